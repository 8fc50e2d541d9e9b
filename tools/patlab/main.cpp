// patlab: the command line of the prefix-aware decode attention lab.
//
// Exit codes (ExitCode in options.hpp): 0 success; 1 a check found a mismatch; 2 bad input, an
// unsupported request or output that could not be written; 3 a CUDA error (a broken CUDA host
// too) or GPU out-of-memory; 4 an internal error; 77 bench/compare/serve ran no GPU stage (no
// CUDA device), the CPU parts passed.
#include <CLI/CLI.hpp>
#include <cctype>
#include <iostream>
#include <new>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/gpu.hpp"
#include "version.hpp"

namespace {

/// The index of the first empty argument after the subcommand `sub` (argv[1]) that is not the
/// value of an option, or 0. CLI11 2.1 (Debian 12) loops forever on such an argument once the
/// positionals are filled: the empty name matches its nameless option groups (past an option's
/// required values too). An empty required value is left to the option's own check, which names it.
int stray_empty_argument(const CLI::App& sub, int argc, char** argv) {
  size_t values_left = 0;  // required values the last option has still to take
  bool positionals_only = false;  // after "--"
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const bool option = !positionals_only && a.size() > 1 && a[0] == '-' &&
                        (a[1] == '-' || std::isalpha(static_cast<unsigned char>(a[1])));
    if (option && a == "--") {
      positionals_only = true;
      values_left = 0;
    } else if (option) {
      const std::string name = a.substr(0, a.find('='));
      const CLI::Option* opt = sub.get_option_no_throw(name);
      const bool takes_values = opt && name == a && opt->get_type_size_max() > 0;
      values_left = takes_values ? static_cast<size_t>(opt->get_items_expected_min()) : 0;
    } else if (values_left > 0) {
      --values_left;
    } else if (a.empty()) {
      return i;
    }
  }
  return 0;
}

/// Parses the command line and runs the chosen command; every failure becomes one line on
/// stderr and an exit code.
int parse_and_run(CLI::App& app, const patlab::cli::Action& action, int argc, char** argv) {
  using patlab::cli::one_line;
  // CLI11 answers `patlab frob` with "A subcommand is required"; name the unknown command instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::string known;
    bool found = false;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App* a) { return !a->get_name().empty(); })) {
      found = found || sub->get_name() == argv[1];
      known += (known.empty() ? "" : ", ") + sub->get_name();
    }
    if (!found) {
      std::cerr << "patlab: error: unknown command '" << one_line(argv[1]) << "' (commands: " << known << ")\n";
      return patlab::cli::kExitBadInput;
    }
  }
  // Where a parse error points: the chosen subcommand's help.
  const std::string help = argc > 1 && argv[1][0] != '-' ? std::string("patlab ") + argv[1] + " --help"
                                                         : std::string("patlab --help");
  if (argc > 1 && argv[1][0] != '-') {
    const CLI::App& sub = *app.get_subcommand(argv[1]);
    if (const int i = stray_empty_argument(sub, argc, argv)) {
      std::string expected;  // the command's positionals by name (W, TRACE), then "an option"
      for (const CLI::Option* o : sub.get_options([](const CLI::Option* o) { return o->get_positional(); }))
        expected += o->get_name() + " or ";
      std::cerr << "patlab: error: argument " << i - 1 << " after '" << argv[1] << "' is empty where "
                << expected << "an option was expected (see " << help << ")\n";
      return patlab::cli::kExitBadInput;
    }
  }
  try {
    app.parse(argc, argv);
    return action ? action() : 0;
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::cout << "patlab " << PATLAB_VERSION << " (commit " << patlab_commit()
              << (patlab::gpu::built_with_cta_trace() ? ", CTA trace build" : "") << ")\n";
    return 0;
  } catch (const CLI::ConversionError& e) {
    // CLI11 says "Could not convert: --page = 99999999999": name the option and the value instead.
    const std::string what = e.what(), prefix = "Could not convert: ";
    const size_t eq = what.find(" = ");
    const bool known = what.rfind(prefix, 0) == 0 && eq != std::string::npos;
    std::cerr << "patlab: error: "
              << one_line(known ? what.substr(prefix.size(), eq - prefix.size()) + ": '" + what.substr(eq + 3) +
                                      "' is not a value of the option's type, or out of its range"
                                : what)
              << " (see " << help << ")\n";
    return patlab::cli::kExitBadInput;
  } catch (const CLI::ParseError& e) {
    std::cerr << "patlab: error: " << one_line(e.what()) << " (see " << help << ")\n";
    return patlab::cli::kExitBadInput;
  } catch (const patlab::Error& e) {
    std::cerr << "patlab: error: " << one_line(e.what()) << "\n";
    return e.kind() == patlab::ErrorKind::device ? patlab::cli::kExitDevice : patlab::cli::kExitBadInput;
  } catch (const std::bad_alloc&) {
    std::cerr << "patlab: error: out of host memory (try a smaller workload)\n";
    return patlab::cli::kExitBadInput;
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CLI::App app{
        "patlab: prefix-aware decode attention, from one query per CTA to PAT, checked against a "
        "float64 oracle and timed on the GPU.\n"
        "A workload [W] is a preset name, a tree spec a,b_x,y or a .json file, or one of --preset, "
        "--tree, --workload, --random-tree; --model (heads and head dim of a model, patlab list --models) "
        "or --heads/--head-dim, and --page/--dtype override its shape.",
        "patlab"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(PATLAB_VERSION), "Print the version and commit, then exit");
    app.footer(
        "Exit codes: 0 success; 1 a check failed; 2 bad input or output that could not be written (one line on stderr); 3 a CUDA error, a broken "
        "CUDA host or GPU out-of-memory; 4 an unexpected failure (a bug); 77 bench/compare/serve ran no GPU stage (no CUDA device "
        "or a build without CUDA; the CPU parts ran and passed).");
    patlab::cli::Action action;
    patlab::cli::add_list(app, action);
    patlab::cli::add_workload(app, action);
    patlab::cli::add_check(app, action);
    patlab::cli::add_plan(app, action);
    patlab::cli::add_bench(app, action);
    patlab::cli::add_compare(app, action);
    patlab::cli::add_export(app, action);
    patlab::cli::add_memsim(app, action);
    patlab::cli::add_layerkv(app, action);
    patlab::cli::add_serve(app, action);
    patlab::cli::add_packinfer(app, action);
    patlab::cli::add_sparse(app, action);
    patlab::cli::require_decimal_numbers(app);
    const int code = parse_and_run(app, action, argc, argv);
    // Tables and JSON go to stdout: a write that failed (a full disk, say) must not exit 0.
    std::cout.flush();
    if (!std::cout) {
      std::cerr << "patlab: error: could not write the output to stdout (a full disk or a closed file?)\n";
      return code == patlab::cli::kExitOk ? patlab::cli::kExitBadInput : code;
    }
    return code;
  } catch (const std::exception& e) {
    std::cerr << "patlab: internal error: " << patlab::cli::one_line(e.what()) << "\n";
    return patlab::cli::kExitInternal;
  }
}
