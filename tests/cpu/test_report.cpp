// Reports and the JSON parser: every --format prints the same tables, CSV and Markdown escape
// what would break them, JSON output parses back; the parser reports malformed input with its line.
#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/error.hpp"
#include "patlab/report/json.hpp"
#include "patlab/report/report.hpp"

using namespace patlab;

namespace {

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

/// RFC 4180 records of a CSV text (quoted fields may hold commas, quotes and newlines).
std::vector<std::vector<std::string>> parse_csv(const std::string& s) {
  std::vector<std::vector<std::string>> records(1);
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      records.back().push_back(field), field.clear();
    } else if (c == '\n') {
      records.back().push_back(field), field.clear();
      records.emplace_back();
    } else {
      field += c;
    }
  }
  if (records.back().empty()) records.pop_back();
  return records;
}

/// Cells of a Markdown table row "| a | b\| c |": unescaped, trimmed.
std::vector<std::string> md_cells(const std::string& row) {
  std::vector<std::string> cells;
  std::string cur;
  for (size_t i = 1; i < row.size(); ++i) {  // skip the leading '|'
    if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
      cur += '|';
      ++i;
    } else if (row[i] == '|') {
      cells.push_back(cur.substr(1, cur.size() - 2));  // one space each side
      cur.clear();
    } else {
      cur += row[i];
    }
  }
  return cells;
}

/// A table with every kind of cell and text that needs escaping.
std::vector<Table> sample() {
  Table t;
  t.title = "run, \"quoted\"";
  t.columns = {"name", "value, with comma", "bytes", "q\"uote"};
  t.add({"plain", Cell::num(3.14159, 2), Cell::bytes(84e6), "a|b"});
  t.add({"line\nbreak", Cell::integer(-42), Cell::bytes(999), "tab\there"});
  t.add({"back\\slash", Cell::num(std::nan("")), Cell::bytes(1.5e9), Cell::none()});
  Table kv = key_values("summary", {{"requests", Cell::integer(64)}, {"workload", "preset tiny"},
                                    {"ratio", Cell::sci(1.5e-5)}, {"missing", Cell::none()}});
  return {t, kv};
}

std::string print_to_string(Format f) {
  std::ostringstream out;
  print(out, sample(), f);
  return out.str();
}

}  // namespace

TEST_CASE("json::parse: values") {
  const json::Value v = json::parse(
      R"({"b": [1, -2.5, 3e2, 0, -0.0, 1E-2], "a": {"t": true, "f": false, "n": null},
          "s": "q\"\\\/\b\f\n\r\t\u00e9\u20ac", "e": [], "o": {}})",
      "t");
  REQUIRE(v.is_object());
  CHECK(v.obj.begin()->first == "a");  // keys sorted
  const json::Value* b = v.find("b");
  REQUIRE(b);
  REQUIRE(b->is_array());
  REQUIRE(b->arr.size() == 6);
  CHECK(b->arr[0].num == 1);
  CHECK(b->arr[1].num == -2.5);
  CHECK(b->arr[2].num == 300);
  CHECK(b->arr[5].num == 0.01);
  const json::Value* a = v.find("a");
  REQUIRE(a);
  CHECK(a->find("t")->type == json::Value::Type::boolean);
  CHECK(a->find("t")->b);
  CHECK_FALSE(a->find("f")->b);
  CHECK(a->find("n")->type == json::Value::Type::null);
  CHECK(a->find("missing") == nullptr);
  CHECK(v.find("s")->str == "q\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac");
  CHECK(v.find("e")->arr.empty());
  CHECK(v.find("o")->obj.empty());
  CHECK(b->find("x") == nullptr);  // find on a non-object
  CHECK(json::parse("  42 \n", "t").num == 42);
  CHECK(json::parse("\"x\"", "t").str == "x");
}

TEST_CASE("json::parse: malformed input names the line") {
  struct Case {
    const char* text;
    const char* needle;
  };
  const Case cases[] = {
      {"", "doc: line 1: unexpected end of input"},
      {"{\n  \"a\": 1,\n}", "doc: line 3: expected a string key"},
      {"[1 2]", "doc: line 1: expected ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\": 1\n\n\"b\": 2}", "doc: line 3: expected '}'"},
      {"\"abc", "unterminated string"},
      {"\"a\\qb\"", "unknown escape \\q"},
      {"\"\\u12zz\"", "malformed \\u escape"},
      {"\"\\u12", "short \\u escape"},
      {"{\"a\": 1, \"a\": 2}", "duplicate key \"a\""},
      {"[1]\n x", "doc: line 2: unexpected text after the JSON value"},
      {"nul", "unexpected character 'n'"},
      {"[+1]", "unexpected character '+'"},
      {"-", "malformed number"},
      {"01", "malformed number"},
      {"1.", "malformed number"},
      {"1e", "malformed number"},
      {"0x1F", "malformed number"},
      {"-nan", "malformed number"},
      {"-inf", "malformed number"},
      {"1.5.2", "malformed number"},
      {"{'a': 1}", "expected a string key"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    require_error([&] { json::parse(c.text, "doc"); }, c.needle);
  }
  const std::string deep(65, '[');
  CHECK(json::parse(std::string(64, '[') + std::string(64, ']'), "doc").is_array());
  require_error([&] { json::parse(deep + std::string(65, ']'), "doc"); }, "nesting deeper than 64 levels");
}

TEST_CASE("json::quote escapes what JSON requires and round-trips") {
  CHECK(json::quote("plain") == "\"plain\"");
  CHECK(json::quote("a\"b") == "\"a\\\"b\"");
  CHECK(json::quote("a\\b") == "\"a\\\\b\"");
  CHECK(json::quote("l1\nl2\tx\r") == "\"l1\\nl2\\tx\\r\"");
  CHECK(json::quote(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
  CHECK(json::quote("\xc3\xa9") == "\"\xc3\xa9\"");  // UTF-8 passes through
  const std::string tricky[] = {"", "\"", "\\\"", "a,b\n\"c\"", std::string("\0\x07z", 3), "/slash/"};
  for (const std::string& s : tricky) CHECK(json::parse(json::quote(s), "q").str == s);
}

TEST_CASE("Cell formats") {
  CHECK(Cell::num(3.14159, 2).text == "3.14");
  CHECK(Cell::num(3.14159, 2).value == 3.14159);
  CHECK(Cell::num(2.5, 0).text == "2");  // round half to even, as printf does
  CHECK(Cell::num(std::nan("")).text == "nan");
  CHECK_FALSE(Cell::num(std::nan("")).numeric);
  CHECK(Cell::num(std::nan("")).missing);  // no number for machines: null in JSON
  CHECK_FALSE(Cell::num(1.0).missing);
  CHECK(Cell::sci(1.5e-5).text == "1.50e-05");
  CHECK(Cell::sci(1.5e-5).value == 1.5e-5);
  CHECK(Cell::sci(1e-3, 0).text == "1e-03");
  CHECK(Cell::none().text == "-");
  CHECK(Cell::none().missing);
  CHECK_FALSE(Cell::none().numeric);
  CHECK_FALSE(Cell("-").missing);  // the text "-" is text, not a missing value
  CHECK(Cell::num(-INFINITY).text == "-inf");
  CHECK(Cell::integer(-42).text == "-42");
  CHECK(Cell::bytes(999).text == "999 B");
  CHECK(Cell::bytes(84e6).text == "84.0 MB");
  CHECK(Cell::bytes(1.5e9).text == "1.5 GB");
  CHECK(Cell::bytes(2e12).text == "2.0 TB");
  CHECK(Cell::bytes(5e15).text == "5000.0 TB");
  CHECK(Cell::bytes(84e6).value == 84e6);
  Table t;
  t.title = "t";
  t.columns = {"a", "b"};
  require_error([&] { t.add({"only one"}); }, "internal: table 't' row has 1 cells for 2 columns");
}

TEST_CASE("print: aligned table") {
  const std::string out = print_to_string(Format::table);
  const auto ls = lines(out);
  REQUIRE(ls.size() >= 4);
  CHECK(ls[0] == "run, \"quoted\"");
  CHECK(ls[1] == std::string(ls[0].size(), '-'));
  CHECK(ls[2].rfind("name", 0) == 0);
  CHECK(out.find("3.14  ") != std::string::npos);  // table shows the rounded text
  CHECK(out.find("84.0 MB") != std::string::npos);
  // The key/value table: the value column is text (not all numeric), the rows align on it.
  const auto sum = std::find(ls.begin(), ls.end(), "summary");
  REQUIRE(sum != ls.end());
  CHECK(*(sum - 1) == "");  // a blank line between tables
  CHECK(*(sum + 2) == "field     value");
  CHECK(*(sum + 3) == "requests  64");
  CHECK(*(sum + 4) == "workload  preset tiny");
  // A numeric column is right-aligned: its rows end at the same column.
  Table n;
  n.title = "n";
  n.columns = {"k", "v"};
  n.add({"a", Cell::integer(5)});
  n.add({"bb", Cell::integer(12345)});
  std::ostringstream o;
  print(o, {n}, Format::table);
  CHECK(lines(o.str())[3] == "a       5");
  CHECK(lines(o.str())[4] == "bb  12345");
}

TEST_CASE("print: CSV escapes commas, quotes and newlines; numbers are raw") {
  const std::string out = print_to_string(Format::csv);
  CHECK(out.rfind("# run, \"quoted\"\n", 0) == 0);
  const auto recs = parse_csv(out);
  // # title, header, 3 rows, # title, header, 4 rows
  REQUIRE(recs.size() == 11);
  CHECK(recs[1] == std::vector<std::string>{"name", "value, with comma", "bytes", "q\"uote"});
  CHECK(recs[2] == std::vector<std::string>{"plain", "3.14159", "84000000", "a|b"});
  CHECK(recs[3] == std::vector<std::string>{"line\nbreak", "-42", "999", "tab\there"});
  CHECK(recs[4] == std::vector<std::string>{"back\\slash", "", "1500000000", ""});  // missing: empty
  CHECK(recs[5][0] == "# summary");
  CHECK(recs[6] == std::vector<std::string>{"field", "value"});
  CHECK(recs[7] == std::vector<std::string>{"requests", "64"});
  CHECK(recs[8] == std::vector<std::string>{"workload", "preset tiny"});
  CHECK(recs[9] == std::vector<std::string>{"ratio", "1.5e-05"});
  CHECK(recs[10] == std::vector<std::string>{"missing", ""});
  for (size_t r : {1, 2, 3, 4}) CHECK(recs[r].size() == 4);
}

TEST_CASE("print: JSON parses back to the same tables") {
  const std::string out = print_to_string(Format::json);
  const json::Value v = json::parse(out, "report");
  REQUIRE(v.is_object());
  REQUIRE(v.obj.size() == 2);
  const json::Value* run = v.find("run, \"quoted\"");
  REQUIRE(run);
  REQUIRE(run->is_array());
  REQUIRE(run->arr.size() == 3);
  const json::Value& r0 = run->arr[0];
  CHECK(r0.find("name")->str == "plain");
  CHECK(r0.find("value, with comma")->is_number());
  CHECK(r0.find("value, with comma")->num == 3.14159);
  CHECK(r0.find("bytes")->num == 84e6);
  CHECK(r0.find("q\"uote")->str == "a|b");
  CHECK(run->arr[1].find("name")->str == "line\nbreak");
  CHECK(run->arr[1].find("value, with comma")->num == -42);
  CHECK(run->arr[1].find("q\"uote")->str == "tab\there");
  CHECK(run->arr[2].find("name")->str == "back\\slash");
  CHECK(run->arr[2].find("value, with comma")->type == json::Value::Type::null);  // non-finite: null
  CHECK(run->arr[2].find("q\"uote")->type == json::Value::Type::null);            // missing: null
  // A field table is one object of fields, numbers as numbers.
  const json::Value* sum = v.find("summary");
  REQUIRE(sum);
  REQUIRE(sum->is_object());
  REQUIRE(sum->obj.size() == 4);
  CHECK(sum->find("requests")->is_number());
  CHECK(sum->find("requests")->num == 64);
  CHECK(sum->find("workload")->str == "preset tiny");
  CHECK(sum->find("ratio")->num == 1.5e-5);
  CHECK(sum->find("missing")->type == json::Value::Type::null);
}

TEST_CASE("print: JSON lines, one object per row and per field table, each naming its table") {
  std::ostringstream o;
  print(o, sample(), Format::jsonl);
  const auto ls = lines(o.str());
  REQUIRE(ls.size() == 4);  // 3 rows + 1 field table
  std::vector<json::Value> objs;
  for (const std::string& l : ls) {
    CAPTURE(l);
    objs.push_back(json::parse(l, "line"));  // each line alone is a JSON value
    REQUIRE(objs.back().is_object());
  }
  for (size_t i = 0; i < 3; ++i) {
    CHECK(objs[i].find("table")->str == "run, \"quoted\"");
    CHECK(objs[i].obj.size() == 5);  // "table" and 4 columns
  }
  CHECK(objs[0].find("value, with comma")->num == 3.14159);
  CHECK(objs[1].find("name")->str == "line\nbreak");  // the newline is escaped: still one line
  CHECK(objs[2].find("bytes")->num == 1.5e9);
  CHECK(objs[3].find("table")->str == "summary");
  CHECK(objs[3].find("requests")->num == 64);
  CHECK(objs[3].find("missing")->type == json::Value::Type::null);
}

TEST_CASE("print: JSON refuses a table whose keys would repeat") {
  Table dup = key_values("d", {{"a", Cell::integer(1)}, {"a", Cell::integer(2)}});
  for (Format f : {Format::json, Format::jsonl}) {
    std::ostringstream o;
    require_error([&] { print(o, {dup}, f); }, "internal: table 'd' has the key 'a' twice");
  }
  Table named;
  named.title = "n";
  named.columns = {"table", "x"};
  named.add({"t", Cell::integer(1)});
  std::ostringstream o;
  require_error([&] { print(o, {named}, Format::jsonl); }, "has the key 'table' twice");
}

TEST_CASE("print: Markdown tables keep their shape") {
  const std::string out = print_to_string(Format::markdown);
  const auto ls = lines(out);
  REQUIRE(ls.size() >= 7);
  CHECK(ls[0] == "**run, \"quoted\"**");
  CHECK(ls[1] == "");
  CHECK(ls[2] == "| name | value, with comma | bytes | q\"uote |");
  // Right-aligned: columns whose cells are all numbers or missing ("nan" and "-" count as such;
  // the text "a|b" does not).
  CHECK(ls[3] == "| --- | ---: | ---: | --- |");
  // Every row has the header's cells, even with '|' and a newline in the text.
  REQUIRE(ls.size() >= 7);
  for (size_t i = 4; i < 7; ++i) {
    CAPTURE(ls[i]);
    CHECK(md_cells(ls[i]).size() == 4);
  }
  CHECK(md_cells(ls[4]) == std::vector<std::string>{"plain", "3.14", "84.0 MB", "a|b"});
  CHECK(md_cells(ls[5])[0] == "line break");
  CHECK(ls[7] == "");
  CHECK(ls[8] == "**summary**");
  CHECK(ls[10] == "| field | value |");
  CHECK(ls[11] == "| --- | --- |");
  CHECK(ls[12] == "| requests | 64 |");
}

TEST_CASE("parse_format") {
  CHECK(parse_format("table") == Format::table);
  CHECK(parse_format("csv") == Format::csv);
  CHECK(parse_format("json") == Format::json);
  CHECK(parse_format("jsonl") == Format::jsonl);
  CHECK(parse_format("markdown") == Format::markdown);
  CHECK(parse_format("md") == Format::markdown);
  for (const char* bad : {"xml", "", "JSON", "tables", "json-lines"})
    require_error([&] { parse_format(bad); },
                  "unknown format '" + std::string(bad) + "' (expected table, csv, json, jsonl or markdown)");
}
