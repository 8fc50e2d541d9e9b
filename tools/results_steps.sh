# Sourced by the run scripts of docs/results/*/ (bash): the time budget of one device call and
# the names of its output files, written once. Expects `budget` (seconds) set by the script.
#   left        seconds of the budget left
#   cap N       N, or what is left of the budget when that is less (at least 1): a step's timeout
#   slug TEXT   TEXT as a file-name part (lower-case letters and digits, runs of others as '_')
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
slug() { echo "$1" | tr -c 'a-z0-9' '_' | tr -s '_'; }
