/// @file report.hpp
/// @brief Results as tables, printed as aligned text, CSV, JSON or Markdown (`--format`).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace patlab {

/// How reports are printed.
enum class Format { table, csv, json, markdown };

/// Parses "table", "csv", "json" or "markdown"; throws Error(usage).
Format parse_format(const std::string& s);

/// One cell: text, or a number kept as a number for CSV and JSON.
struct Cell {
  std::string text;
  bool numeric = false;
  double value = 0;

  Cell() = default;
  Cell(const char* s) : text(s) {}          // NOLINT: implicit by design
  Cell(std::string s) : text(std::move(s)) {}  // NOLINT
  /// A number shown with `precision` digits after the point.
  static Cell num(double v, int precision = 2);
  /// An integer.
  static Cell integer(int64_t v);
  /// A byte count shown as "84.0 MB" (decimal units), kept as bytes in CSV/JSON.
  static Cell bytes(double v);
};

/// A titled table.
struct Table {
  std::string title;
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
  /// Appends a row; it must have one cell per column.
  void add(std::vector<Cell> row);
};

/// A key/value table ("field", "value") for summaries.
Table key_values(const std::string& title, const std::vector<std::pair<std::string, Cell>>& items);

/// Prints tables: aligned text (titles underlined), CSV (a "# title" line before each), JSON
/// (an object of title -> array of row objects) or Markdown.
void print(std::ostream& out, const std::vector<Table>& tables, Format format);

}  // namespace patlab
