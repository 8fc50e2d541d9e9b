/// @file report.hpp
/// @brief Results as tables, printed as aligned text, CSV, JSON, JSON lines or Markdown (`--format`).
///
/// The machine formats, as `--format` documents them:
/// - `json`: one object; each table is a key (its title). A row table is an array of objects
///   keyed by column; a field table (key_values(), e.g. `run`) is one object of field -> value.
///   Numbers are JSON numbers; a missing value (Cell::missing(), shown "-") and a non-finite number
///   are `null`.
/// - `jsonl`: one JSON object per line: one per row of a row table, one per field table, each
///   with a `"table"` key naming its table; made for appending to `.jsonl` files.
/// - `csv`: sections, one per table: a `# title` line, a header line, the rows. A missing value
///   is an empty field. Split on the `# ` lines (README.md, "Output formats", shows one way).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace patlab {

/// How reports are printed.
enum class Format { table, csv, json, jsonl, markdown };

/// The names parse_format() accepts, for help texts and errors.
inline constexpr const char* kFormatNames = "table, csv, json, jsonl or markdown";

/// Parses "table", "csv", "json", "jsonl" or "markdown" ("md"); throws Error(usage).
Format parse_format(const std::string& s);

/// One cell: text, a number kept as a number for CSV and JSON, or a missing value.
struct Cell {
  std::string text;     ///< What the aligned table and Markdown show.
  bool numeric = false;  ///< Whether `value` is the cell's (finite) number for CSV and JSON.
  double value = 0;      ///< The number, when `numeric`.
  bool missing = false;  ///< No value: "-" in tables, empty in CSV, null in JSON.

  Cell() = default;
  /// A text cell showing `s` (not numeric).
  Cell(const char* s) : text(s) {}          // NOLINT: implicit by design
  /// A text cell showing `s` (not numeric).
  Cell(std::string s) : text(std::move(s)) {}  // NOLINT
  /// A number shown with `precision` digits after the point.
  static Cell num(double v, int precision = 2);
  /// A number shown in scientific notation ("1.23e-05") with `precision` digits after the point.
  static Cell sci(double v, int precision = 2);
  /// An integer.
  static Cell integer(int64_t v);
  /// A byte count shown as "84.0 MB" (decimal units), kept as bytes in CSV/JSON.
  static Cell bytes(double v);
  /// No value (a stage that was not timed, a ratio with nothing to compare to).
  static Cell none();
};

/// A titled table.
struct Table {
  /// Heading of the table in text and Markdown, its key in JSON, its `# title` line in CSV.
  std::string title;
  /// Column names, in order: the header line, and the keys of a row table's JSON objects.
  std::vector<std::string> columns;
  /// The rows, each one cell per column (add() checks it).
  std::vector<std::vector<Cell>> rows;
  /// A field table ("field", "value" rows, made by key_values()): JSON prints it as one object.
  bool fields = false;
  /// Appends a row; it must have one cell per column.
  void add(std::vector<Cell> row);
};

/// A field table ("field", "value") for summaries; JSON prints it as an object of fields.
Table key_values(const std::string& title, const std::vector<std::pair<std::string, Cell>>& items);

/// Prints tables: aligned text (titles underlined), CSV (a "# title" line before each), JSON
/// (an object of title -> array of row objects, or -> object of fields), JSON lines (one object
/// per row with a "table" key) or Markdown. See the file comment for the exact shapes.
void print(std::ostream& out, const std::vector<Table>& tables, Format format);

}  // namespace patlab
