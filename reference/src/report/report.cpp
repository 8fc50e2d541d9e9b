#include "patlab/report/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "patlab/error.hpp"
#include "patlab/report/json.hpp"

namespace patlab {

Format parse_format(const std::string& s) {
  if (s == "table") return Format::table;
  if (s == "csv") return Format::csv;
  if (s == "json") return Format::json;
  if (s == "jsonl") return Format::jsonl;
  if (s == "markdown" || s == "md") return Format::markdown;
  throw Error(ErrorKind::usage, "unknown format '" + s + "' (expected " + kFormatNames + ")");
}

namespace {

/// A number printed with `printf_format` ("%.*f" or "%.*e"); non-finite ones are missing.
Cell formatted_number(double v, int precision, const char* printf_format) {
  Cell c;
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, precision, v);
  c.text = std::isfinite(v) ? buf : (std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
  c.numeric = std::isfinite(v);
  c.missing = !c.numeric;  // no number a machine could use: null in JSON
  c.value = v;
  return c;
}

}  // namespace

Cell Cell::num(double v, int precision) { return formatted_number(v, precision, "%.*f"); }

Cell Cell::sci(double v, int precision) { return formatted_number(v, precision, "%.*e"); }

Cell Cell::none() {
  Cell c("-");
  c.missing = true;
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
  t.fields = true;
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

/// The key that names a row's table in JSON lines.
constexpr const char* kTableKey = "table";

std::string raw(const Cell& c) {
  if (c.missing) return "";
  if (!c.numeric) return c.text;
  char buf[64];
  if (c.value == std::floor(c.value) && std::fabs(c.value) < 9007199254740992.0)  // integers exactly (< 2^53)
    std::snprintf(buf, sizeof buf, "%.0f", c.value);
  else
    std::snprintf(buf, sizeof buf, "%.9g", c.value);
  return buf;
}

/// A cell as a JSON value: a number, null when missing, else a string.
std::string json_value(const Cell& c) {
  if (c.missing) return "null";
  return c.numeric ? raw(c) : json::quote(c.text);
}

/// The `"key": value` pairs of one JSON object: a row keyed by column, or every field of a field
/// table, each pair after the first preceded by `between`; with `table_key`, a leading "table"
/// pair names the table (JSON lines).
void json_members(std::ostream& out, const Table& t, size_t row, bool table_key, const char* between = ", ") {
  const char* sep = "";
  if (table_key) {
    out << json::quote(kTableKey) << ": " << json::quote(t.title);
    sep = between;
  }
  if (t.fields) {
    for (const auto& r : t.rows) {
      out << sep << json::quote(r[0].text) << ": " << json_value(r[1]);
      sep = between;
    }
    return;
  }
  for (size_t c = 0; c < t.columns.size(); ++c) {
    out << sep << json::quote(t.columns[c]) << ": " << json_value(t.rows[row][c]);
    sep = between;
  }
}

/// Every key of a table's objects differs from the others and from "table" (JSON lines), so
/// the output parses without duplicate keys.
void require_unique_keys(const Table& t) {
  std::vector<std::string> keys{kTableKey};
  if (t.fields)
    for (const auto& r : t.rows) keys.push_back(r[0].text);
  else
    keys.insert(keys.end(), t.columns.begin(), t.columns.end());
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  require(dup == sorted.end(), "internal: table '" + t.title + "' has the key '" + (dup == sorted.end() ? "" : *dup) +
                                   "' twice (or a key named 'table')");
}

/// JSON: one object, title -> array of row objects (row tables) or object of fields.
void print_json(std::ostream& out, const std::vector<Table>& tables) {
  out << "{";
  for (size_t t = 0; t < tables.size(); ++t) {
    require_unique_keys(tables[t]);
    out << (t ? ",\n " : "\n ") << json::quote(tables[t].title) << ": ";
    if (tables[t].fields) {  // one field a line
      out << "{\n  ";
      json_members(out, tables[t], 0, false, ",\n  ");
      out << "}";
      continue;
    }
    out << "[";
    for (size_t r = 0; r < tables[t].rows.size(); ++r) {
      out << (r ? ",\n  {" : "\n  {");
      json_members(out, tables[t], r, false);
      out << "}";
    }
    out << "]";
  }
  out << "\n}\n";
}

/// JSON lines: one object per row (one per field table), each with a "table" key.
void print_jsonl(std::ostream& out, const std::vector<Table>& tables) {
  for (const Table& t : tables) {
    require_unique_keys(t);
    const size_t objects = t.fields ? 1 : t.rows.size();
    for (size_t r = 0; r < objects; ++r) {
      out << "{";
      json_members(out, t, r, true);
      out << "}\n";
    }
  }
}

/// Per column, whether every cell is a number or missing (such columns are right-aligned). One
/// pass over the table, done once per table.
std::vector<bool> right_aligned(const Table& t) {
  std::vector<bool> right(t.columns.size(), true);
  for (const auto& row : t.rows)
    for (size_t c = 0; c < row.size(); ++c) right[c] = right[c] && (row[c].numeric || row[c].missing);
  return right;
}

}  // namespace

void print(std::ostream& out, const std::vector<Table>& tables, Format format) {
  if (format == Format::json) return print_json(out, tables);
  if (format == Format::jsonl) return print_jsonl(out, tables);
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
