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
  /// The JSON kinds of value.
  enum class Type { null, boolean, number, string, array, object };
  /// Which kind this value is, so which one of the fields below holds it (none for null).
  Type type = Type::null;
  /// The value of a boolean (`true` or `false`).
  bool b = false;
  /// The value of a number.
  double num = 0.0;
  /// The text of a string, its escapes decoded.
  std::string str;
  /// The elements of an array, in order.
  std::vector<Value> arr;
  /// The members of an object, by key.
  std::map<std::string, Value> obj;

  /// True for an object.
  bool is_object() const { return type == Type::object; }
  /// True for an array.
  bool is_array() const { return type == Type::array; }
  /// True for a string.
  bool is_string() const { return type == Type::string; }
  /// True for a number.
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
