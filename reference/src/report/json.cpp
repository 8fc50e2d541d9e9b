#include "patlab/report/json.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "patlab/error.hpp"

namespace patlab::json {

const Value* Value::find(const std::string& key) const {
  if (type != Type::object) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &it->second;
}

namespace {

/// Recursive-descent parser over the whole text.
class Parser {
 public:
  Parser(const std::string& text, const std::string& origin, size_t max_items)
      : s_(text), origin_(origin), max_items_(max_items) {}

  Value document() {
    Value v = value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& what) const {
    int line = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) line += s_[i] == '\n';
    throw Error(ErrorKind::usage, origin_ + ": line " + std::to_string(line) + ": " + what);
  }

  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }

  bool consume(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  Value value(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than 64 levels");  // depth 0 is level 1
    skip_ws();
    if (pos_ >= s_.size()) fail("unexpected end of input");
    char c = s_[pos_];
    Value v;
    if (c == '{') {
      ++pos_;
      v.type = Value::Type::object;
      if (consume('}')) return v;
      do {
        skip_ws();
        if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
        std::string key = string_literal();
        expect(':');
        if (v.obj.count(key)) fail("duplicate key \"" + key + "\"");
        if (v.obj.size() >= max_items_) fail("an object with more than " + std::to_string(max_items_) + " members");
        v.obj.emplace(key, value(depth + 1));
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      ++pos_;
      v.type = Value::Type::array;
      if (consume(']')) return v;
      do {
        if (v.arr.size() >= max_items_) fail("an array with more than " + std::to_string(max_items_) + " elements");
        v.arr.push_back(value(depth + 1));
      } while (consume(','));
      expect(']');
    } else if (c == '"') {
      v.type = Value::Type::string;
      v.str = string_literal();
    } else if (s_.compare(pos_, 4, "true") == 0) {
      pos_ += 4;
      v.type = Value::Type::boolean;
      v.b = true;
    } else if (s_.compare(pos_, 5, "false") == 0) {
      pos_ += 5;
      v.type = Value::Type::boolean;
    } else if (s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
    } else if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      // JSON's grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? first: strtod alone would
      // also take "0x10", "-nan" and "-inf".
      const size_t begin = pos_;
      auto digits = [&] {
        const size_t from = pos_;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
        return pos_ > from;
      };
      if (s_[pos_] == '-') ++pos_;
      if (pos_ < s_.size() && s_[pos_] == '0') {
        ++pos_;
      } else if (!digits()) {
        fail("malformed number");
      }
      if (pos_ < s_.size() && s_[pos_] == '.' && (++pos_, !digits())) fail("malformed number");
      if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
        ++pos_;
        if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
        if (!digits()) fail("malformed number");
      }
      if (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.'))
        fail("malformed number");
      v.type = Value::Type::number;
      v.num = std::strtod(s_.substr(begin, pos_ - begin).c_str(), nullptr);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      if (byte >= 0x20 && byte < 0x7f) fail(std::string("unexpected character '") + c + "'");
      char code[8];  // a control or non-ASCII byte: by its code, never raw (a NUL would end the message)
      std::snprintf(code, sizeof code, "0x%02x", byte);
      fail(std::string("unexpected byte ") + code + " (not JSON text)");
    }
    return v;
  }

  std::string string_literal() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (pos_ + 4 > s_.size()) fail("short \\u escape");
          for (size_t i = pos_; i < pos_ + 4; ++i)
            if (!std::isxdigit(static_cast<unsigned char>(s_[i]))) fail("malformed \\u escape");
          unsigned code = static_cast<unsigned>(std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16));
          pos_ += 4;
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default: fail(std::string("unknown escape \\") + e);
      }
    }
  }

  const std::string& s_;
  std::string origin_;
  size_t max_items_;
  size_t pos_ = 0;
};

}  // namespace

Value parse(const std::string& text, const std::string& origin, size_t max_items) {
  return Parser(text, origin, max_items).document();
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace patlab::json
