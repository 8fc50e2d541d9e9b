#include "patlab/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "patlab/error.hpp"
#include "patlab/json.hpp"

namespace patlab {

Format parse_format(const std::string& s) {
  if (s == "table") return Format::table;
  if (s == "csv") return Format::csv;
  if (s == "json") return Format::json;
  if (s == "markdown" || s == "md") return Format::markdown;
  throw Error(ErrorKind::usage, "unknown format '" + s + "' (expected table, csv, json or markdown)");
}

Cell Cell::num(double v, int precision) {
  Cell c;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  c.text = std::isfinite(v) ? buf : (std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
  c.numeric = std::isfinite(v);
  c.value = v;
  return c;
}

Cell Cell::integer(int64_t v) {
  Cell c;
  c.text = std::to_string(v);
  c.numeric = true;
  c.value = static_cast<double>(v);
  return c;
}

Cell Cell::bytes(double v) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  double x = v;
  while (std::fabs(x) >= 1000 && u < 4) {
    x /= 1000;
    ++u;
  }
  Cell c;
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", x, units[u]);
  c.text = buf;
  c.numeric = true;
  c.value = v;
  return c;
}

void Table::add(std::vector<Cell> row) {
  require(row.size() == columns.size(), "internal: table '" + title + "' row has " + std::to_string(row.size()) +
                                            " cells for " + std::to_string(columns.size()) + " columns");
  rows.push_back(std::move(row));
}

Table key_values(const std::string& title, const std::vector<std::pair<std::string, Cell>>& items) {
  Table t;
  t.title = title;
  t.columns = {"field", "value"};
  for (const auto& kv : items) t.add({kv.first, kv.second});
  return t;
}

namespace {

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// A Markdown table cell: '|' would end the cell and a newline the row.
std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

std::string raw(const Cell& c) {
  if (!c.numeric) return c.text;
  char buf[64];
  if (c.value == std::floor(c.value) && std::fabs(c.value) < 9007199254740992.0)  // integers exactly (< 2^53)
    std::snprintf(buf, sizeof buf, "%.0f", c.value);
  else
    std::snprintf(buf, sizeof buf, "%.9g", c.value);
  return buf;
}

/// Per column, whether every cell is a number or "-" (such columns are right-aligned). One pass
/// over the table, done once per table.
std::vector<bool> right_aligned(const Table& t) {
  std::vector<bool> right(t.columns.size(), true);
  for (const auto& row : t.rows)
    for (size_t c = 0; c < row.size(); ++c) right[c] = right[c] && (row[c].numeric || row[c].text == "-");
  return right;
}

}  // namespace

void print(std::ostream& out, const std::vector<Table>& tables, Format format) {
  if (format == Format::json) {
    out << "{";
    for (size_t t = 0; t < tables.size(); ++t) {
      out << (t ? ",\n " : "\n ") << json::quote(tables[t].title) << ": [";
      for (size_t r = 0; r < tables[t].rows.size(); ++r) {
        out << (r ? ",\n  {" : "\n  {");
        for (size_t c = 0; c < tables[t].columns.size(); ++c) {
          const Cell& cell = tables[t].rows[r][c];
          out << (c ? ", " : "") << json::quote(tables[t].columns[c]) << ": "
              << (cell.numeric ? raw(cell) : json::quote(cell.text));
        }
        out << "}";
      }
      out << "]";
    }
    out << "\n}\n";
    return;
  }
  for (size_t ti = 0; ti < tables.size(); ++ti) {
    const Table& t = tables[ti];
    if (format == Format::csv) {
      out << "# " << t.title << "\n";
      for (size_t c = 0; c < t.columns.size(); ++c) out << (c ? "," : "") << csv_escape(t.columns[c]);
      out << "\n";
      for (const auto& row : t.rows) {
        for (size_t c = 0; c < row.size(); ++c) out << (c ? "," : "") << csv_escape(raw(row[c]));
        out << "\n";
      }
      continue;
    }
    if (ti) out << "\n";
    const std::vector<bool> right = right_aligned(t);
    if (format == Format::markdown) {
      out << "**" << t.title << "**\n\n|";
      for (const auto& c : t.columns) out << " " << md_escape(c) << " |";
      out << "\n|";
      for (size_t c = 0; c < t.columns.size(); ++c) out << (right[c] ? " ---: |" : " --- |");
      out << "\n";
      for (const auto& row : t.rows) {
        out << "|";
        for (const auto& cell : row) out << " " << md_escape(cell.text) << " |";
        out << "\n";
      }
      continue;
    }
    std::vector<size_t> width(t.columns.size());
    for (size_t c = 0; c < t.columns.size(); ++c) {
      width[c] = t.columns[c].size();
      for (const auto& row : t.rows) width[c] = std::max(width[c], row[c].text.size());
    }
    out << t.title << "\n" << std::string(t.title.size(), '-') << "\n";
    auto line = [&](const std::vector<std::string>& cells, bool header) {
      for (size_t c = 0; c < cells.size(); ++c) {
        const size_t pad = width[c] - cells[c].size();
        const bool to_right = !header && right[c];
        out << (c ? "  " : "") << (to_right ? std::string(pad, ' ') : "") << cells[c]
            << (to_right || c + 1 == cells.size() ? "" : std::string(pad, ' '));
      }
      out << "\n";
    };
    line(t.columns, true);
    for (const auto& row : t.rows) {
      std::vector<std::string> cells;
      for (const auto& cell : row) cells.push_back(cell.text);
      line(cells, false);
    }
  }
}

}  // namespace patlab
