#include "otsync/protocol/message.hpp"

#include <array>
#include <cmath>
#include <limits>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/json_text.hpp"
#include "otsync/protocol/op_json.hpp"

namespace otsync::protocol {
namespace {

using nlohmann::json;

constexpr std::string_view badly_formed = "ERR_MESSAGE_BADLY_FORMED";
// Numbers above this lose integer precision in JS; ShareDB's client never sends them.
constexpr double max_safe_integer = 9007199254740991.0;

error_info badly(std::string message) {
  return {std::string(badly_formed), std::move(message)};
}

bool is_null_or_missing(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null();
}

// ShareDB refuses names that would touch Object.prototype.
bool is_dangerous_property(std::string_view name) {
  static constexpr std::array<std::string_view, 13> names = {
      "__proto__",        "constructor",      "hasOwnProperty", "isPrototypeOf",    "propertyIsEnumerable",
      "toLocaleString",   "toString",         "valueOf",        "__defineGetter__", "__defineSetter__",
      "__lookupGetter__", "__lookupSetter__", "prototype"};
  for (auto n : names) {
    if (n == name) return true;
  }
  return false;
}

// A non-negative integer below 2^53, as the version and seq fields must be.
std::optional<std::uint64_t> as_count(const json& value) {
  if (value.is_number_unsigned()) {
    auto n = value.get<std::uint64_t>();
    if (static_cast<double>(n) <= max_safe_integer) return n;
    return std::nullopt;
  }
  if (value.is_number_integer()) {
    auto n = value.get<std::int64_t>();
    if (n >= 0) return static_cast<std::uint64_t>(n);
    return std::nullopt;
  }
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (d >= 0 && d <= max_safe_integer && std::floor(d) == d) return static_cast<std::uint64_t>(d);
  }
  return std::nullopt;
}

// Reads an optional string field that must not name a prototype property.
// Returns false when present but invalid.
bool read_name(const json& object, const char* key, std::optional<std::string>& out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  const auto& s = it->get_ref<const std::string&>();
  if (is_dangerous_property(s)) return false;
  out = s;
  return true;
}

// `v`: a number >= 0 or null.
bool read_version(const json& object, std::optional<std::uint64_t>& out) {
  auto it = object.find("v");
  if (it == object.end() || it->is_null()) return true;
  out = as_count(*it);
  return out.has_value();
}

std::optional<error_info> read_doc_address(const json& raw, std::string& collection, std::string& id) {
  std::optional<std::string> c;
  std::optional<std::string> d;
  if (!read_name(raw, "c", c) || !c) return badly("Invalid collection");
  if (!read_name(raw, "d", d) || !d) return badly("Invalid id");
  collection = std::move(*c);
  id = std::move(*d);
  return std::nullopt;
}

std::optional<std::string> resolve_type(const json& type) {
  if (!type.is_string()) return std::nullopt;
  const auto& name = type.get_ref<const std::string&>();
  if (name == ot::type_name || name == ot::type_uri) return std::string(ot::type_uri);
  return std::nullopt;
}

std::variant<request_body, error_info> parse_body(const std::string& action, const json& raw) {
  if (action == "hs") {
    handshake_request hs;
    for (const char* key : {"protocol", "protocolMinor"}) {
      if (!is_null_or_missing(raw, key) && !raw[key].is_number()) return badly("Invalid protocol");
    }
    auto it = raw.find("id");
    // ShareDB adopts any truthy id; only strings can be echoed as a connection id.
    if (it != raw.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      hs.id = it->get<std::string>();
    }
    return request_body{hs};
  }
  if (action == "f" || action == "s" || action == "u") {
    doc_request r;
    if (auto e = read_doc_address(raw, r.collection, r.id)) return *e;
    if (!read_version(raw, r.version)) return badly("Invalid version");
    return request_body{std::move(r)};
  }
  if (action == "bf" || action == "bs" || action == "bu") {
    bulk_request r;
    std::optional<std::string> c;
    if (!read_name(raw, "c", c) || !c) return badly("Invalid collection");
    r.collection = std::move(*c);
    auto it = raw.find("b");
    if (it == raw.end()) return badly("Invalid bulk subscribe data");
    if (it->is_array()) {
      for (const auto& id : *it) {
        if (!id.is_string() || is_dangerous_property(id.get_ref<const std::string&>())) return badly("Invalid id");
        r.ids.push_back(id.get<std::string>());
      }
    } else if (it->is_object() && action != "bu") {
      r.map_form = true;
      for (const auto& [id, v] : it->items()) {
        if (is_dangerous_property(id)) return badly("Invalid id");
        auto version = as_count(v);
        if (!version) return badly("Invalid version");
        r.versions.emplace_back(id, *version);
      }
    } else {
      return badly("Invalid bulk subscribe data");
    }
    return request_body{std::move(r)};
  }
  if (action == "op") {
    submit_request r;
    if (auto e = read_doc_address(raw, r.collection, r.id)) return *e;
    if (!read_version(raw, r.version)) return badly("Invalid version");
    auto seq = raw.find("seq");
    if (seq == raw.end() || seq->is_null()) {
      return error_info{"ERR_OT_OP_BADLY_FORMED", "Both src and seq must be set together"};
    }
    if (!seq->is_number()) return badly("Invalid seq");
    if (seq->is_number_float() && seq->get<double>() >= max_safe_integer) {
      return error_info{"ERR_CONNECTION_SEQ_INTEGER_OVERFLOW",
                        "Connection seq has exceeded the max safe integer, maybe from being open for too long"};
    }
    auto seq_value = as_count(*seq);
    if (!seq_value) {
      if (seq->is_number_unsigned()) {
        return error_info{"ERR_CONNECTION_SEQ_INTEGER_OVERFLOW",
                          "Connection seq has exceeded the max safe integer, maybe from being open for too long"};
      }
      return badly("Invalid seq");
    }
    if (static_cast<double>(*seq_value) >= max_safe_integer) {
      return error_info{"ERR_CONNECTION_SEQ_INTEGER_OVERFLOW",
                        "Connection seq has exceeded the max safe integer, maybe from being open for too long"};
    }
    r.seq = *seq_value;
    auto src = raw.find("src");
    if (src != raw.end() && !src->is_null()) {
      if (!src->is_string()) return error_info{"ERR_OT_OP_BADLY_FORMED", "src must be a string"};
      // ShareDB uses `request.src || connection src`: an empty src means the connection's.
      if (!src->get_ref<const std::string&>().empty()) r.src = src->get<std::string>();
    }
    auto body = read_op_body(raw);
    if (auto* e = std::get_if<error_info>(&body)) return *e;
    r.body = std::move(std::get<doc::op_body>(body));
    return request_body{std::move(r)};
  }
  if (action == "nf" || action == "nt") {
    snapshot_request r;
    if (auto e = read_doc_address(raw, r.collection, r.id)) return *e;
    if (action == "nf") {
      if (!read_version(raw, r.version)) return badly("Invalid version");
    } else {
      r.by_timestamp = true;
      auto ts = raw.find("ts");
      if (ts != raw.end() && !ts->is_null()) {
        if (!ts->is_number()) return badly("Invalid timestamp");
        double t = ts->get<double>();
        if (!std::isfinite(t) || std::fabs(t) > max_safe_integer) return badly("Invalid timestamp");
        r.timestamp_ms = static_cast<std::int64_t>(std::floor(t));
      }
    }
    return request_body{std::move(r)};
  }
  if (action == "pp") return request_body{ping_request{}};
  if (action == "qf" || action == "qs" || action == "qu") {
    auto id = raw.find("id");
    if (id == raw.end() || !id->is_number()) return badly("Missing query ID");
    if (action == "qu") return request_body{query_unsubscribe_request{}};
    return request_body{
        unsupported_request{{"ERR_DATABASE_METHOD_NOT_IMPLEMENTED", "Queries are not supported by this server yet"}}};
  }
  if (action == "p" || action == "ps" || action == "pu" || action == "pr") {
    std::optional<std::string> ch;
    if (!read_name(raw, "ch", ch)) return badly("Invalid presence channel");
    return request_body{
        unsupported_request{{"ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE", "Presence is not supported by this server yet"}}};
  }
  return badly("Invalid or unknown message");
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of a `\uXXXX` escape starting at `at` (the backslash), or -1.
int escaped_unit(std::string_view s, std::size_t at) {
  if (at + 6 > s.size() || s[at] != '\\' || s[at + 1] != 'u') return -1;
  int unit = 0;
  for (std::size_t i = at + 2; i < at + 6; ++i) {
    int h = hex_value(s[i]);
    if (h < 0) return -1;
    unit = unit * 16 + h;
  }
  return unit;
}

// JSON.parse accepts lone surrogate escapes ("\ud800"); they are not text.
// Replaces each with U+FFFD so the request can be echoed in an error reply.
// Returns nullopt when there are none.
std::optional<std::string> replace_lone_surrogates(std::string_view frame) {
  std::string out;
  out.reserve(frame.size());
  bool replaced = false;
  std::size_t i = 0;
  while (i < frame.size()) {
    if (frame[i] != '\\') {
      out += frame[i++];
      continue;
    }
    int unit = escaped_unit(frame, i);
    if (unit < 0) {  // another escape: copy it whole
      out.append(frame.substr(i, 2));
      i += 2;
      continue;
    }
    bool high = unit >= 0xD800 && unit <= 0xDBFF;
    bool low = unit >= 0xDC00 && unit <= 0xDFFF;
    if (high) {
      int next = escaped_unit(frame, i + 6);
      if (next >= 0xDC00 && next <= 0xDFFF) {
        out.append(frame.substr(i, 12));
        i += 12;
        continue;
      }
    }
    if (high || low) {
      out += "\\ufffd";
      replaced = true;
    } else {
      out.append(frame.substr(i, 6));
    }
    i += 6;
  }
  if (!replaced) return std::nullopt;
  return out;
}

}  // namespace

parse_result parse_request(std::string_view frame) {
  json raw = json::parse(frame, nullptr, /*allow_exceptions=*/false);
  if (raw.is_discarded()) {
    if (auto repaired = replace_lone_surrogates(frame)) {
      json echoed = json::parse(*repaired, nullptr, false);
      if (echoed.is_object()) {
        bool is_op = echoed.contains("a") && echoed["a"] == "op";
        return rejected_request{std::move(echoed),
                                {is_op ? "ERR_OT_OP_BADLY_FORMED" : std::string(badly_formed),
                                 "Text contains a lone surrogate (an unpaired \\uD800-\\uDFFF escape); "
                                 "it is not valid Unicode (shown here as U+FFFD)"}};
      }
    }
    return unreadable_frame{badly("Received a frame that is not valid JSON")};
  }
  if (!raw.is_object()) return unreadable_frame{badly("Received non-object message")};
  std::string action;
  if (auto a = raw.find("a"); a != raw.end() && a->is_string()) action = a->get<std::string>();
  auto body = parse_body(action, raw);
  if (auto* e = std::get_if<error_info>(&body)) return rejected_request{std::move(raw), std::move(*e)};
  return request{std::move(action), std::move(raw), std::move(std::get<request_body>(body))};
}

std::variant<doc::op_body, error_info> read_op_body(const json& message) {
  if (message.contains("op")) {
    auto parsed = op_from_json(message["op"]);
    if (!parsed) return error_info{"ERR_OT_OP_NOT_APPLIED", parsed.error().message()};
    return doc::op_body{std::move(*parsed)};
  }
  if (!is_null_or_missing(message, "create")) {
    const auto& create = message["create"];
    if (!create.is_object()) return error_info{"ERR_OT_OP_BADLY_FORMED", "Create data must be an object"};
    auto type = create.find("type");
    if (type == create.end() || !type->is_string()) return error_info{"ERR_OT_OP_BADLY_FORMED", "Missing create type"};
    auto uri = resolve_type(*type);
    if (!uri) return error_info{"ERR_DOC_TYPE_NOT_RECOGNIZED", "Unknown type"};
    doc::create_body body{std::move(*uri), {}};
    auto data = create.find("data");
    if (data != create.end() && !data->is_null()) {
      if (!data->is_string()) return error_info{"ERR_OT_OP_NOT_APPLIED", "Initial data must be a string"};
      body.data = data->get<std::string>();
    }
    return doc::op_body{std::move(body)};
  }
  if (!is_null_or_missing(message, "del")) {
    if (message["del"] != true) return error_info{"ERR_OT_OP_BADLY_FORMED", "del value must be true"};
    return doc::op_body{doc::delete_body{}};
  }
  return error_info{"ERR_MESSAGE_BADLY_FORMED", "Invalid op message"};
}

void write_op_body(json& message, const doc::op_body& body) {
  if (const auto* edit = std::get_if<ot::op>(&body)) {
    message["op"] = op_to_json(*edit);
  } else if (const auto* create = std::get_if<doc::create_body>(&body)) {
    message["create"] = json{{"type", create->type_uri}, {"data", create->data}};
  } else {
    message["del"] = true;
  }
}

namespace {

// The op message's fields in nlohmann's (sorted) key order, without a DOM: it is encoded once per op.
void append_op_body(std::string& out, const doc::op_body& body) {
  if (const auto* edit = std::get_if<ot::op>(&body)) {
    out += ",\"op\":";
    json_text::append_op(out, *edit);
  }
}

}  // namespace

std::string encode_op_message(std::string_view collection, std::string_view id, const doc::op_record& record) {
  std::string out;
  out.reserve(96 + collection.size() + id.size() + record.src.size());
  out += "{\"a\":\"op\",\"c\":";
  json_text::append_string(out, collection);
  if (const auto* create = std::get_if<doc::create_body>(&record.body)) {
    out += ",\"create\":{\"data\":";
    json_text::append_string(out, create->data);
    out += ",\"type\":";
    json_text::append_string(out, create->type_uri);
    out.push_back('}');
  }
  out += ",\"d\":";
  json_text::append_string(out, id);
  if (std::holds_alternative<doc::delete_body>(record.body)) out += ",\"del\":true";
  append_op_body(out, record.body);
  out += ",\"seq\":";
  json_text::append_uint(out, record.seq);
  out += ",\"src\":";
  json_text::append_string(out, record.src);
  out += ",\"v\":";
  json_text::append_uint(out, record.version);
  out.push_back('}');
  return out;
}

json snapshot_json(const doc::snapshot& snap) {
  json out = {{"v", snap.version}};
  if (snap.type_uri) {
    out["data"] = snap.data;
    out["type"] = *snap.type_uri;
  } else {
    out["type"] = nullptr;
  }
  return out;
}

std::string encode_ack(std::string_view collection, std::string_view id, std::string_view src, std::uint64_t seq,
                       std::uint64_t version) {
  std::string out;
  out.reserve(64 + collection.size() + id.size() + src.size());
  out += "{\"a\":\"op\",\"c\":";
  json_text::append_string(out, collection);
  out += ",\"d\":";
  json_text::append_string(out, id);
  out += ",\"seq\":";
  json_text::append_uint(out, seq);
  out += ",\"src\":";
  json_text::append_string(out, src);
  out += ",\"v\":";
  json_text::append_uint(out, version);
  out.push_back('}');
  return out;
}

std::string encode_error_reply(json raw, const error_info& error) {
  raw["error"] = json{{"code", error.code}, {"message", error.message}};
  return raw.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace otsync::protocol
