/// @file json.hpp
/// @brief A small JSON value, parser and string escaper: enough for workload files, exports and
/// machine-readable reports, without another dependency.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace patlab::json {

/// A parsed JSON value. Objects keep their keys sorted (std::map); numbers are doubles.
struct Value {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool b = false;
  double num = 0.0;
  std::string str;
  std::vector<Value> arr;
  std::map<std::string, Value> obj;

  bool is_object() const { return type == Type::object; }
  bool is_array() const { return type == Type::array; }
  bool is_string() const { return type == Type::string; }
  bool is_number() const { return type == Type::number; }
  /// The member `key` of an object, or nullptr.
  const Value* find(const std::string& key) const;
};

/// Parses `text`; throws Error(usage) with "<origin>: line L: <problem>" on malformed input, and
/// as soon as one array or object has more than `max_items` elements (so that a huge input stops
/// early instead of being parsed whole).
Value parse(const std::string& text, const std::string& origin, size_t max_items = SIZE_MAX);

/// `s` as a quoted JSON string literal.
std::string quote(const std::string& s);

}  // namespace patlab::json
