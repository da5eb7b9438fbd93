#include "frame.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

#include "otsync/ot/unicode.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/json_text.hpp"

namespace otsync::load {

namespace json_text = protocol::json_text;
namespace {

/// A cursor over JSON text; every reader returns false on malformed input.
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

  bool string(std::string& out) {
    out.clear();
    if (!eat('"')) return false;
    while (true) {
      const char* start = p_;
      while (p_ < end_ && *p_ != '"' && *p_ != '\\') ++p_;
      out.append(start, p_);
      if (p_ >= end_) return false;
      if (*p_ == '"') {
        ++p_;
        return true;
      }
      ++p_;  // backslash
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
          ot::unicode::append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
  }

  bool uint(std::uint64_t& out) {
    ws();
    auto [next, ec] = std::from_chars(p_, end_, out);
    if (ec != std::errc{} || next == p_) return false;
    p_ = next;
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    return true;
  }

  bool literal(std::string_view word) {
    ws();
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  /// Skips any value.
  bool skip() {
    char c = peek();
    if (c == '"') {
      ++p_;
      if (!skip_string_body()) return false;
      return true;
    }
    if (c == '{' || c == '[') {
      int depth = 0;
      while (p_ < end_) {
        char x = *p_++;
        if (x == '"') {
          if (!skip_string_body()) return false;
        } else if (x == '{' || x == '[') {
          ++depth;
        } else if (x == '}' || x == ']') {
          if (--depth == 0) return true;
        }
      }
      return false;
    }
    const char* start = p_;
    while (p_ < end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ' ' && *p_ != '\n') ++p_;
    return p_ != start;
  }

 private:
  /// After an opening quote: to just past the closing one.
  bool skip_string_body() {
    while (p_ < end_) {
      char x = *p_++;
      if (x == '"') return true;
      if (x == '\\') {
        if (p_ >= end_) return false;
        ++p_;
      }
    }
    return false;
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
};

bool parse_op_array(scanner& in, ot::op& out, std::string& scratch) {
  out.clear();
  if (!in.eat('[')) return false;
  if (in.eat(']')) return true;
  do {
    char c = in.peek();
    if (c == '"') {
      if (!in.string(scratch)) return false;
      std::size_t cps = ot::unicode::count_code_points(scratch);
      out.push_back(ot::component::insert(scratch, cps));
    } else if (c == '{') {
      in.eat('{');
      bool found = false;
      if (!in.eat('}')) {
        do {
          std::string key;
          if (!in.string(key) || !in.eat(':')) return false;
          if (key == "d" && !found) {
            if (in.peek() == '"') {
              if (!in.string(scratch)) return false;
              std::size_t cps = ot::unicode::count_code_points(scratch);
              out.push_back(ot::component::erase(scratch, cps));
            } else {
              std::uint64_t n = 0;
              if (!in.uint(n)) return false;
              out.push_back(ot::component::erase(n));
            }
            found = true;
          } else if (!in.skip()) {
            return false;
          }
        } while (in.eat(','));
        if (!in.eat('}')) return false;
      }
      if (!found) return false;
    } else {
      std::uint64_t n = 0;
      if (!in.uint(n)) return false;
      out.push_back(ot::component::skip(n));
    }
  } while (in.eat(','));
  return in.eat(']');
}

bool parse_error(scanner& in, frame& out) {
  out.has_error = true;
  out.error_code.clear();
  if (!in.eat('{')) return in.skip();
  if (in.eat('}')) return true;
  std::string key;
  do {
    if (!in.string(key) || !in.eat(':')) return false;
    if (key == "code" && in.peek() == '"') {
      if (!in.string(out.error_code)) return false;
    } else if (!in.skip()) {
      return false;
    }
  } while (in.eat(','));
  return in.eat('}');
}

bool optional_uint(scanner& in, std::optional<std::uint64_t>& out) {
  if (in.peek() == 'n') {
    out.reset();
    return in.literal("null");
  }
  std::uint64_t n = 0;
  if (!in.uint(n)) return false;
  out = n;
  return true;
}

}  // namespace

void frame::reset() noexcept {
  a = action::other;
  c.clear();
  d.clear();
  src.clear();
  id.clear();
  v.reset();
  seq.reset();
  has_op = has_create = has_del = has_error = false;
  error_code.clear();
  data_raw = {};
  create_raw = {};
}

bool parse_frame(std::string_view text, frame& out) {
  out.reset();
  scanner in(text);
  if (!in.eat('{')) return false;
  if (in.eat('}')) return true;
  std::string key;
  std::string scratch;
  do {
    if (!in.string(key) || !in.eat(':')) return false;
    if (key.size() == 1) {
      switch (key[0]) {
        case 'a': {
          if (!in.string(scratch)) return false;
          if (scratch == "op")
            out.a = action::op;
          else if (scratch == "s")
            out.a = action::s;
          else if (scratch == "f")
            out.a = action::f;
          else if (scratch == "hs")
            out.a = action::hs;
          else if (scratch == "init")
            out.a = action::init;
          continue;
        }
        case 'c':
          if (in.peek() != '"') break;
          if (!in.string(out.c)) return false;
          continue;
        case 'd':
          if (in.peek() != '"') break;
          if (!in.string(out.d)) return false;
          continue;
        case 'v':
          if (!optional_uint(in, out.v)) return false;
          continue;
        default:
          break;
      }
    } else if (key == "src") {
      if (in.peek() == '"') {
        if (!in.string(out.src)) return false;
        continue;
      }
    } else if (key == "seq") {
      if (!optional_uint(in, out.seq)) return false;
      continue;
    } else if (key == "op") {
      out.has_op = true;
      if (!parse_op_array(in, out.op, scratch)) return false;
      continue;
    } else if (key == "data") {
      const char* start = in.pos();
      if (!in.skip()) return false;
      out.data_raw = std::string_view(start, static_cast<std::size_t>(in.pos() - start));
      continue;
    } else if (key == "create") {
      out.has_create = true;
      const char* start = in.pos();
      if (!in.skip()) return false;
      out.create_raw = std::string_view(start, static_cast<std::size_t>(in.pos() - start));
      continue;
    } else if (key == "del") {
      out.has_del = true;
    } else if (key == "error") {
      if (!parse_error(in, out)) return false;
      continue;
    } else if (key == "id") {
      if (in.peek() == '"') {
        if (!in.string(out.id)) return false;
        continue;
      }
    }
    if (!in.skip()) return false;
  } while (in.eat(','));
  return in.eat('}');
}

bool parse_snapshot(std::string_view raw, snapshot& out) {
  auto j = protocol::parse_json_bounded(raw);
  if (j.is_discarded() || !j.is_object()) return false;
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_unsigned()) return false;
  out.v = v->get<std::uint64_t>();
  auto type = j.find("type");
  out.has_type = type != j.end() && type->is_string();
  out.data.clear();
  auto data = j.find("data");
  if (out.has_type && data != j.end()) {
    if (!data->is_string()) return false;
    out.data = data->get<std::string>();
  }
  return true;
}

bool parse_create_data(std::string_view raw, std::string& data) {
  auto j = protocol::parse_json_bounded(raw);
  if (j.is_discarded() || !j.is_object()) return false;
  auto it = j.find("data");
  data.clear();
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  data = it->get<std::string>();
  return true;
}

std::string_view handshake_frame() {
  return R"({"a":"hs","id":null,"protocol":1,"protocolMinor":2})";
}

void build_doc_request(std::string& out, std::string_view act, std::string_view c, std::string_view d,
                       std::optional<std::uint64_t> v) {
  out.clear();
  out.append(R"({"a":")").append(act).append(R"(","c":)");
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

void build_submit(std::string& out, std::string_view c, std::string_view d, std::uint64_t v, std::uint64_t seq,
                  const std::string* src, const ot::op& operation) {
  out.clear();
  out.append(R"({"a":"op","c":)");
  json_text::append_string(out, c);
  out.append(R"(,"d":)");
  json_text::append_string(out, d);
  out.append(R"(,"v":)");
  json_text::append_uint(out, v);
  if (src != nullptr) {
    out.append(R"(,"src":)");
    json_text::append_string(out, *src);
  }
  out.append(R"(,"seq":)");
  json_text::append_uint(out, seq);
  out.append(R"(,"x":{},"op":)");
  json_text::append_op(out, operation);
  out.push_back('}');
}

void build_create(std::string& out, std::string_view c, std::string_view d, std::uint64_t seq) {
  out.clear();
  out.append(R"({"a":"op","c":)");
  json_text::append_string(out, c);
  out.append(R"(,"d":)");
  json_text::append_string(out, d);
  out.append(R"(,"v":0,"seq":)");
  json_text::append_uint(out, seq);
  out.append(R"(,"x":{},"create":{"type":"http://sharejs.org/types/text-unicode","data":""}})");
}

}  // namespace otsync::load
