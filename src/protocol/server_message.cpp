#include "otsync/protocol/server_message.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "otsync/ot/error.hpp"
#include "otsync/ot/unicode.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/json_text.hpp"

namespace otsync::protocol {
namespace {

/// A cursor over JSON text; every reader returns false on malformed input.
/// Nothing recurses: nested values are skipped with an explicit, depth-bounded stack.
class scanner {
 public:
  explicit scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool eat(char c) {
    ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  [[nodiscard]] char peek() {
    ws();
    return p_ < end_ ? *p_ : '\0';
  }
  [[nodiscard]] const char* pos() const { return p_; }
  void rewind(const char* to) { p_ = to; }
  [[nodiscard]] bool at_end() {
    ws();
    return p_ == end_;
  }

  /// A string, unescaped and checked to be valid UTF-8; `code_points` counts its code points.
  bool string(std::string& out, std::size_t& code_points) {
    out.clear();
    if (!eat('"')) return false;
    unsigned char high = 0;  // any byte >= 0x80 sets the top bit: only then is UTF-8 checked
    while (true) {
      const char* start = p_;
      while (p_ < end_) {
        auto byte = static_cast<unsigned char>(*p_);
        if (byte == '"' || byte == '\\' || byte < 0x20) break;
        high |= byte;
        ++p_;
      }
      out.append(start, p_);
      if (p_ >= end_) return false;
      if (*p_ == '"') {
        ++p_;
        if ((high & 0x80U) == 0) {
          code_points = out.size();
          return true;
        }
        return ot::unicode::validate_utf8(out, code_points) == ot::unicode::utf8_status::valid;
      }
      if (*p_ != '\\') return false;  // a control character
      ++p_;
      if (p_ >= end_) return false;
      char e = *p_++;
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {
            std::uint32_t low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return false;
          }
          if (cp >= 0x80) high |= 0x80U;
          ot::unicode::append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
  }
  bool string(std::string& out) {
    std::size_t unused = 0;
    return string(out, unused);
  }

  /// A member name: a view into the text when it is plain ASCII without escapes (as every
  /// name the decoder looks for), else unescaped into `buffer`.
  bool key(std::string_view& out, std::string& buffer) {
    ws();
    if (p_ >= end_ || *p_ != '"') return false;
    const char* start = p_ + 1;
    const char* q = start;
    while (q < end_) {
      auto byte = static_cast<unsigned char>(*q);
      if (byte == '"' || byte == '\\' || byte < 0x20 || byte >= 0x80) break;
      ++q;
    }
    if (q < end_ && *q == '"') {
      out = std::string_view(start, static_cast<std::size_t>(q - start));
      p_ = q + 1;
      return true;
    }
    if (!string(buffer)) return false;
    out = buffer;
    return true;
  }

  /// A non-negative integer that fits 64 bits, with no fraction or exponent.
  bool uint(std::uint64_t& out) {
    ws();
    auto [next, ec] = std::from_chars(p_, end_, out);
    if (ec != std::errc{} || next == p_) return false;
    if (*p_ == '0' && next - p_ > 1) return false;  // JSON has no leading zeros
    if (next < end_ && (*next == '.' || *next == 'e' || *next == 'E')) return false;
    p_ = next;
    return true;
  }

  /// Skips any value, validating it as it goes (brackets matched by type,
  /// commas and colons in place, strings unescaped and checked as UTF-8), so a
  /// frame the decoder accepts is JSON wherever it looks. `depth` is the
  /// nesting the value starts at. Iterative: an explicit stack, bounded by
  /// the depth limit.
  bool skip(std::size_t depth) {
    std::array<char, default_max_json_depth + 1> closers{};
    std::size_t open = 0;
    while (true) {
      // A value.
      char c = peek();
      if (c == '"') {
        if (!string(scratch_)) return false;
      } else if (c == '{' || c == '[') {
        if (depth + open + 1 > default_max_json_depth) return false;
        ++p_;
        closers[open++] = c == '{' ? '}' : ']';
        if (eat(closers[open - 1])) {
          --open;
        } else {
          if (c == '{' && !(string(scratch_) && eat(':'))) return false;
          continue;  // the first member's value
        }
      } else if (!skip_scalar()) {
        return false;
      }
      // After a value: close what ends here, or go on to the next member.
      while (true) {
        if (open == 0) return true;
        if (eat(',')) {
          if (closers[open - 1] == '}' && !(string(scratch_) && eat(':'))) return false;
          break;
        }
        if (!eat(closers[open - 1])) return false;
        --open;
      }
    }
  }

 private:
  /// `true`, `false`, `null` or a number.
  bool skip_scalar() {
    for (std::string_view word : {std::string_view("true"), std::string_view("false"), std::string_view("null")}) {
      if (static_cast<std::size_t>(end_ - p_) >= word.size() && std::string_view(p_, word.size()) == word) {
        p_ += word.size();
        return true;
      }
    }
    // A number, by JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    auto digit = [this] { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; };
    auto digits = [&] {
      if (!digit()) return false;
      while (digit()) ++p_;
      return true;
    };
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else if (!digits()) {
      return false;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
    }
    // A number too large for a double is no number to a JSON reader (nlohmann: "number overflow").
    if (p_ - start > 300 ||
        std::string_view(start, static_cast<std::size_t>(p_ - start)).find_first_of("eE") != std::string_view::npos) {
      const std::string token(start, p_);
      if (!std::isfinite(std::strtod(token.c_str(), nullptr))) return false;
    }
    return true;
  }
  bool hex4(std::uint32_t& out) {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char h = *p_++;
      out <<= 4;
      if (h >= '0' && h <= '9')
        out |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        out |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        out |= static_cast<std::uint32_t>(h - 'A' + 10);
      else
        return false;
    }
    return true;
  }

  const char* p_;
  const char* end_;
  std::string scratch_;  // skipped strings are decoded here (validated, then dropped)
};

/// A length as the fast path takes it; anything else (fractions, negatives, too large) goes to op_from_json.
bool read_length(scanner& in, std::uint64_t& n) {
  return in.uint(n) && n <= ot::max_length;
}

/// The op array the common way: numbers skip, strings insert, `{"d":N|"text"}` delete.
/// False for anything else (the caller then keeps the raw text).
bool read_op(scanner& in, ot::op& out, std::string& scratch, std::string& key_buffer) {
  out.clear();
  if (!in.eat('[')) return false;
  if (in.eat(']')) return true;
  do {
    if (out.size() >= default_max_json_values) return false;
    char c = in.peek();
    if (c == '"') {
      std::size_t cps = 0;
      if (!in.string(scratch, cps)) return false;
      out.push_back(ot::component::insert(scratch, cps));
    } else if (c == '{') {
      in.eat('{');
      bool found = false;
      if (in.eat('}')) return false;
      do {
        std::string_view key;
        if (!in.key(key, key_buffer) || !in.eat(':')) return false;
        if (key == "d") {
          if (found) return false;  // a repeated key: op_from_json decides
          if (in.peek() == '"') {
            std::size_t cps = 0;
            if (!in.string(scratch, cps)) return false;
            out.push_back(ot::component::erase(scratch, cps));
          } else {
            std::uint64_t n = 0;
            if (!read_length(in, n)) return false;
            out.push_back(ot::component::erase(n));
          }
          found = true;
        } else if (!in.skip(3)) {
          return false;
        }
      } while (in.eat(','));
      if (!in.eat('}') || !found) return false;
    } else {
      std::uint64_t n = 0;
      if (!read_length(in, n)) return false;
      out.push_back(ot::component::skip(n));
    }
  } while (in.eat(','));
  return in.eat(']');
}

/// A string member, or absent when the value has another type.
bool string_or_absent(scanner& in, std::string& out, std::size_t depth) {
  if (in.peek() == '"') return in.string(out);
  out.clear();
  return in.skip(depth);
}

/// An unsigned member, or absent when the value has another type (or does not fit).
bool uint_or_absent(scanner& in, std::optional<std::uint64_t>& out, std::size_t depth) {
  const char* start = in.pos();
  std::uint64_t n = 0;
  char c = in.peek();
  if (c >= '0' && c <= '9' && in.uint(n)) {
    out = n;
    return true;
  }
  out.reset();
  in.rewind(start);
  return in.skip(depth);
}

/// The members of an object at depth 2; `member(key)` reads a value or returns false to have it skipped.
template <typename Member>
bool read_object(scanner& in, std::string& key_buffer, Member&& member) {
  if (!in.eat('{')) return false;
  if (in.eat('}')) return true;
  do {
    std::string_view key;
    if (!in.key(key, key_buffer) || !in.eat(':')) return false;
    int read = member(key);
    if (read < 0) return false;
    if (read == 0 && !in.skip(2)) return false;
  } while (in.eat(','));
  return in.eat('}');
}

bool read_error(scanner& in, server_message& out, std::string& key_buffer) {
  out.has_error = true;
  out.error_is_object = false;  // a repeated key: the last one counts, as in a DOM
  out.error_code.clear();
  out.error_message.clear();
  in.ws();
  const char* start = in.pos();
  if (in.peek() != '{') {
    if (!in.skip(1)) return false;
  } else {
    out.error_is_object = true;
    bool ok = read_object(in, key_buffer, [&](std::string_view k) {
      if (k == "code") return string_or_absent(in, out.error_code, 2) ? 1 : -1;
      if (k == "message") return string_or_absent(in, out.error_message, 2) ? 1 : -1;
      return 0;
    });
    if (!ok) return false;
  }
  in.ws();
  out.error_raw = std::string_view(start, static_cast<std::size_t>(in.pos() - start));
  return true;
}

bool read_snapshot(scanner& in, server_message& out, std::string& key_buffer) {
  out.has_snapshot = out.snapshot_has_type = false;  // a repeated key: the last one counts
  out.snapshot_v.reset();
  out.snapshot_type.clear();
  out.snapshot_data.clear();
  if (in.peek() != '{') return in.skip(1);
  out.has_snapshot = true;
  return read_object(in, key_buffer, [&](std::string_view k) {
    if (k == "v") return uint_or_absent(in, out.snapshot_v, 2) ? 1 : -1;
    if (k == "type") {
      out.snapshot_has_type = in.peek() == '"';
      return string_or_absent(in, out.snapshot_type, 2) ? 1 : -1;
    }
    if (k == "data") return string_or_absent(in, out.snapshot_data, 2) ? 1 : -1;
    return 0;
  });
}

bool read_create(scanner& in, server_message& out, std::string& key_buffer) {
  out.has_create = true;
  out.create_data.clear();
  if (in.peek() != '{') return in.skip(1);
  return read_object(in, key_buffer, [&](std::string_view k) {
    if (k == "data") return string_or_absent(in, out.create_data, 2) ? 1 : -1;
    return 0;
  });
}

std::string dump_raw(std::string_view raw) {
  auto j = parse_json_bounded(raw);
  return j.is_discarded() ? std::string(raw) : j.dump();
}

}  // namespace

void server_message::reset() noexcept {
  a = server_action::other;
  c.clear();
  d.clear();
  src.clear();
  id.clear();
  alias.clear();
  v.reset();
  seq.reset();
  has_op = op_read = false;
  op.clear();
  op_raw = {};
  has_create = has_del = false;
  create_data.clear();
  has_error = error_is_object = false;
  error_code.clear();
  error_message.clear();
  error_raw = {};
  has_snapshot = snapshot_has_type = false;
  snapshot_v.reset();
  snapshot_type.clear();
  snapshot_data.clear();
}

bool decode_server_message(std::string_view text, server_message& out) {
  out.reset();
  scanner in(text);
  if (!in.eat('{')) return false;
  std::string& key_buffer = out.scratch_key;
  std::string& scratch = out.scratch;
  std::string& inner_key = out.scratch_inner_key;
  if (!in.eat('}')) {
    do {
      std::string_view key;
      if (!in.key(key, key_buffer) || !in.eat(':')) return false;
      bool read = true;
      if (key.size() == 1) {
        switch (key[0]) {
          case 'a':
            if (in.peek() != '"') {
              out.a = server_action::other;
              read = false;
              break;
            }
            if (!in.string(scratch)) return false;
            if (scratch == "op")
              out.a = server_action::op;
            else if (scratch == "s")
              out.a = server_action::s;
            else if (scratch == "f")
              out.a = server_action::f;
            else if (scratch == "hs")
              out.a = server_action::hs;
            else if (scratch == "init")
              out.a = server_action::init;
            else
              out.a = server_action::other;
            break;
          case 'c':
            if (!string_or_absent(in, out.c, 1)) return false;
            break;
          case 'd':
            if (!string_or_absent(in, out.d, 1)) return false;
            break;
          case 'v':
            if (!uint_or_absent(in, out.v, 1)) return false;
            break;
          default:
            read = false;
        }
      } else if (key == "src") {
        if (!string_or_absent(in, out.src, 1)) return false;
      } else if (key == "seq") {
        if (!uint_or_absent(in, out.seq, 1)) return false;
      } else if (key == "op") {
        out.has_op = true;
        in.ws();
        const char* start = in.pos();
        out.op_read = read_op(in, out.op, scratch, inner_key);
        if (!out.op_read) {
          out.op.clear();
          in.rewind(start);
          if (!in.skip(1)) return false;
        }
        out.op_raw = std::string_view(start, static_cast<std::size_t>(in.pos() - start));
      } else if (key == "data") {
        if (!read_snapshot(in, out, inner_key)) return false;
      } else if (key == "create") {
        if (!read_create(in, out, inner_key)) return false;
      } else if (key == "del") {
        out.has_del = true;
        read = false;
      } else if (key == "error") {
        if (!read_error(in, out, inner_key)) return false;
      } else if (key == "id") {
        if (!string_or_absent(in, out.id, 1)) return false;
      } else if (key == "alias") {
        if (!string_or_absent(in, out.alias, 1)) return false;
      } else {
        read = false;
      }
      if (!read && !in.skip(1)) return false;
    } while (in.eat(','));
    if (!in.eat('}')) return false;
  }
  return in.at_end();
}

std::pair<std::string, std::string> error_parts(const server_message& message) {
  if (!message.error_is_object) return {"", dump_raw(message.error_raw)};
  return {message.error_code, message.error_message.empty() ? dump_raw(message.error_raw) : message.error_message};
}

// --- Encoders.

void encode_handshake(std::string& out, std::string_view id) {
  out.assign(R"({"a":"hs","id":)");
  if (id.empty())
    out.append("null");
  else
    json_text::append_string(out, id);
  out.append(R"(,"protocol":1,"protocolMinor":2})");
}

void encode_doc_request(std::string& out, std::string_view action, std::string_view c, std::string_view d,
                        std::optional<std::uint64_t> v) {
  out.assign(R"({"a":)");
  json_text::append_string(out, action);
  out.append(R"(,"c":)");
  json_text::append_string(out, c);
  out.append(R"(,"d":)");
  json_text::append_string(out, d);
  out.append(R"(,"v":)");
  if (v)
    json_text::append_uint(out, *v);
  else
    out.append("null");
  out.push_back('}');
}

void encode_submit(std::string& out, frame_style style, std::string_view c, std::string_view d, std::uint64_t v,
                   std::uint64_t seq, std::string_view src, bool resend, const ot::op& operation) {
  out.assign(R"({"a":"op","c":)");
  json_text::append_string(out, c);
  out.append(R"(,"d":)");
  json_text::append_string(out, d);
  if (style == frame_style::otsync) {
    out.append(R"(,"op":)");
    json_text::append_op(out, operation);
    out.append(R"(,"seq":)");
    json_text::append_uint(out, seq);
    out.append(R"(,"src":)");
    json_text::append_string(out, src);
    out.append(R"(,"v":)");
    json_text::append_uint(out, v);
    out.push_back('}');
    return;
  }
  out.append(R"(,"v":)");
  json_text::append_uint(out, v);
  if (resend) {
    out.append(R"(,"src":)");
    json_text::append_string(out, src);
  }
  out.append(R"(,"seq":)");
  json_text::append_uint(out, seq);
  out.append(R"(,"x":{},"op":)");
  json_text::append_op(out, operation);
  out.push_back('}');
}

void encode_create(std::string& out, frame_style style, std::string_view c, std::string_view d, std::uint64_t v,
                   std::uint64_t seq, std::string_view src, std::string_view data) {
  out.assign(R"({"a":"op","c":)");
  json_text::append_string(out, c);
  if (style == frame_style::otsync) {
    out.append(R"(,"create":{"data":)");
    json_text::append_string(out, data);
    out.append(R"(,"type":)");
    json_text::append_string(out, text_unicode_uri);
    out.append(R"(},"d":)");
    json_text::append_string(out, d);
    out.append(R"(,"seq":)");
    json_text::append_uint(out, seq);
    out.append(R"(,"src":)");
    json_text::append_string(out, src);
    out.append(R"(,"v":)");
    json_text::append_uint(out, v);
    out.push_back('}');
    return;
  }
  out.append(R"(,"d":)");
  json_text::append_string(out, d);
  out.append(R"(,"v":)");
  json_text::append_uint(out, v);
  out.append(R"(,"seq":)");
  json_text::append_uint(out, seq);
  out.append(R"(,"x":{},"create":{"type":)");
  json_text::append_string(out, text_unicode_uri);
  out.append(R"(,"data":)");
  json_text::append_string(out, data);
  out.append("}}");
}

}  // namespace otsync::protocol
