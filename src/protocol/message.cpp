#include "otsync/protocol/message.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "otsync/ot/text_unicode.hpp"
#include "otsync/protocol/json_parse.hpp"
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

bool has_control_character(std::string_view s) {
  for (char c : s) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}

// Collection and document ids are stored, logged, put in Redis keys and sent
// with every op: they are bounded, and control characters (which no editor
// types and which hide in logs) are refused.
std::optional<error_info> check_id(std::string_view what, std::string_view value, const message_limits& limits) {
  if (value.size() > limits.max_id_bytes) {
    return badly("Invalid " + std::string(what) + ": longer than " + std::to_string(limits.max_id_bytes) + " bytes");
  }
  if (has_control_character(value)) return badly("Invalid " + std::string(what) + ": contains control characters");
  return std::nullopt;
}

std::optional<error_info> read_doc_address(const json& raw, std::string& collection, std::string& id,
                                           const message_limits& limits) {
  std::optional<std::string> c;
  std::optional<std::string> d;
  if (!read_name(raw, "c", c) || !c) return badly("Invalid collection");
  if (auto e = check_id("collection", *c, limits)) return e;
  if (!read_name(raw, "d", d) || !d) return badly("Invalid id");
  if (auto e = check_id("id", *d, limits)) return e;
  collection = std::move(*c);
  id = std::move(*d);
  return std::nullopt;
}

error_info op_too_large(std::string detail) {
  return {"ERR_OP_TOO_LARGE", std::move(detail)};
}

// Refuses an op before it is converted: the JSON array's length and the
// bytes of its strings (inserted text, deleted text).
std::optional<error_info> check_op_size(const json& message, const message_limits& limits) {
  auto op = message.find("op");
  if (op != message.end() && op->is_array()) {
    if (op->size() > limits.max_op_components) {
      return op_too_large("The op has " + std::to_string(op->size()) + " components; the limit is " +
                          std::to_string(limits.max_op_components));
    }
    std::size_t bytes = 0;
    for (const auto& part : *op) {
      if (part.is_string()) {
        bytes += part.get_ref<const std::string&>().size();
      } else if (part.is_object()) {
        auto d = part.find("d");
        if (d != part.end() && d->is_string()) bytes += d->get_ref<const std::string&>().size();
      }
    }
    if (bytes > limits.max_op_bytes) {
      return op_too_large("The op carries " + std::to_string(bytes) + " bytes of text; the limit is " +
                          std::to_string(limits.max_op_bytes));
    }
  }
  auto create = message.find("create");
  if (create != message.end() && create->is_object()) {
    auto data = create->find("data");
    if (data != create->end() && data->is_string() &&
        data->get_ref<const std::string&>().size() > limits.max_op_bytes) {
      return op_too_large("The create's data has " + std::to_string(data->get_ref<const std::string&>().size()) +
                          " bytes; the limit is " + std::to_string(limits.max_op_bytes));
    }
  }
  return std::nullopt;
}

std::optional<std::string> resolve_type(const json& type) {
  if (!type.is_string()) return std::nullopt;
  const auto& name = type.get_ref<const std::string&>();
  if (name == ot::type_name || name == ot::type_uri) return std::string(ot::type_uri);
  return std::nullopt;
}

std::variant<request_body, error_info> parse_body(const std::string& action, const json& raw,
                                                  const message_limits& limits) {
  if (action == "hs") {
    handshake_request hs;
    for (const char* key : {"protocol", "protocolMinor"}) {
      if (!is_null_or_missing(raw, key) && !raw[key].is_number()) return badly("Invalid protocol");
    }
    auto it = raw.find("id");
    // ShareDB adopts any truthy id; only strings can be echoed as a connection id. The id is the
    // src of every op this connection sends, stored and broadcast with each: one too long or with
    // control characters is not adopted (the connection keeps its fresh id).
    if (it != raw.end() && it->is_string() && !it->get_ref<const std::string&>().empty() &&
        !check_id("id", it->get_ref<const std::string&>(), limits)) {
      hs.id = it->get<std::string>();
    }
    return request_body{hs};
  }
  if (action == "f" || action == "s" || action == "u") {
    doc_request r;
    if (auto e = read_doc_address(raw, r.collection, r.id, limits)) return *e;
    if (!read_version(raw, r.version)) return badly("Invalid version");
    return request_body{std::move(r)};
  }
  if (action == "bf" || action == "bs" || action == "bu") {
    bulk_request r;
    std::optional<std::string> c;
    if (!read_name(raw, "c", c) || !c) return badly("Invalid collection");
    if (auto e = check_id("collection", *c, limits)) return *e;
    r.collection = std::move(*c);
    auto it = raw.find("b");
    if (it == raw.end()) return badly("Invalid bulk subscribe data");
    if ((it->is_array() || it->is_object()) && it->size() > limits.max_bulk_ids) {
      return error_info{"ERR_BULK_LIMIT_EXCEEDED", "A bulk request may name at most " +
                                                       std::to_string(limits.max_bulk_ids) +
                                                       " documents; this one names " + std::to_string(it->size())};
    }
    if (it->is_array()) {
      // A document named twice is read once (the reply holds it once either way).
      std::unordered_set<std::string_view> seen;
      for (const auto& id : *it) {
        if (!id.is_string() || is_dangerous_property(id.get_ref<const std::string&>())) return badly("Invalid id");
        if (auto e = check_id("id", id.get_ref<const std::string&>(), limits)) return *e;
        if (seen.insert(id.get_ref<const std::string&>()).second) r.ids.push_back(id.get<std::string>());
      }
    } else if (it->is_object() && action != "bu") {
      r.map_form = true;
      for (const auto& [id, v] : it->items()) {  // object keys are unique already
        if (is_dangerous_property(id)) return badly("Invalid id");
        if (auto e = check_id("id", id, limits)) return *e;
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
    if (auto e = read_doc_address(raw, r.collection, r.id, limits)) return *e;
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
    if (auto e = check_op_size(raw, limits)) return *e;
    auto src = raw.find("src");
    if (src != raw.end() && !src->is_null()) {
      if (!src->is_string()) return error_info{"ERR_OT_OP_BADLY_FORMED", "src must be a string"};
      if (auto e = check_id("src", src->get_ref<const std::string&>(), limits)) return *e;
      // ShareDB uses `request.src || connection src`: an empty src means the connection's.
      if (!src->get_ref<const std::string&>().empty()) r.src = src->get<std::string>();
    }
    auto body = read_op_body(raw);
    if (auto* e = std::get_if<error_info>(&body)) return *e;
    r.body = std::move(std::get<oplog::op_body>(body));
    return request_body{std::move(r)};
  }
  if (action == "nf" || action == "nt") {
    snapshot_request r;
    if (auto e = read_doc_address(raw, r.collection, r.id, limits)) return *e;
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
    if (!read_name(raw, "ch", ch) || !ch) return badly("Invalid presence channel");
    if (auto e = check_id("presence channel", *ch, limits)) return *e;
    if (action == "pr") return request_body{presence_resend_request{std::move(*ch)}};
    if (action == "ps" || action == "pu") {
      auto seq = raw.find("seq");
      if (seq == raw.end() || !seq->is_number()) return badly("Invalid seq");
      auto n = as_count(*seq);
      if (!n) return badly("Invalid seq");
      return request_body{presence_subscribe_request{std::move(*ch), *n, action == "ps"}};
    }
    presence_update_request r;
    r.channel = std::move(*ch);
    std::optional<std::string> id;
    if (!read_name(raw, "id", id) || !id) return badly("Invalid presence ID");
    if (auto e = check_id("presence ID", *id, limits)) return *e;
    r.id = std::move(*id);
    if (auto pv = raw.find("pv"); pv != raw.end() && !pv->is_null()) {
      r.pv = as_count(*pv);
      if (!r.pv) return badly("Invalid presence version");
    }
    if (!read_version(raw, r.version)) return badly("Invalid version");
    if (!read_name(raw, "c", r.collection)) return badly("Invalid collection");
    if (!read_name(raw, "d", r.doc_id)) return badly("Invalid id");
    if (r.collection) {
      if (auto e = check_id("collection", *r.collection, limits)) return *e;
    }
    if (r.doc_id) {
      if (auto e = check_id("id", *r.doc_id, limits)) return *e;
    }
    if (auto t = raw.find("t"); t != raw.end() && !t->is_null()) {
      if (!t->is_string()) return badly("Invalid type");
      r.type = t->get<std::string>();
    }
    if (auto p = raw.find("p"); p != raw.end()) r.value = *p;
    return request_body{std::move(r)};
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

namespace {

// The members an error reply echoes (besides a bulk request's `b`).
constexpr std::array<const char*, 9> echo_keys = {"a", "c", "d", "v", "src", "seq", "id", "ch", "pv"};

bool is_echo_key(std::string_view key) {
  for (const char* k : echo_keys) {
    if (key == k) return true;
  }
  return false;
}

}  // namespace

parse_result parse_request(std::string_view frame, const message_limits& limits) {
  if (auto shape = scan_json_shape(frame, limits.max_depth, limits.max_values);
      shape.too_deep || shape.too_many_values) {
    // Answered from the top level's addressing fields alone: no tree of attacker-chosen depth or
    // width is built.
    json top = parse_json_top_level(frame, is_echo_key);
    if (top.is_discarded()) return unreadable_frame{badly("Received a frame that is not valid JSON")};
    return rejected_request{
        echo_fields(top, limits.max_bulk_ids),
        badly(shape.too_deep ? "Message nested deeper than " + std::to_string(limits.max_depth) + " levels"
                             : "Message holds more than " + std::to_string(limits.max_values) + " values")};
  }
  json raw = json::parse(frame, nullptr, /*allow_exceptions=*/false);
  if (raw.is_discarded()) {
    if (auto repaired = replace_lone_surrogates(frame)) {
      json echoed = json::parse(*repaired, nullptr, false);
      if (echoed.is_object()) {
        bool is_op = echoed.contains("a") && echoed["a"] == "op";
        return rejected_request{echo_fields(echoed, limits.max_bulk_ids),
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
  auto body = parse_body(action, raw, limits);
  auto echo = echo_fields(raw, limits.max_bulk_ids);
  if (auto* e = std::get_if<error_info>(&body)) return rejected_request{std::move(echo), std::move(*e)};
  return request{std::move(action), std::move(echo), std::move(std::get<request_body>(body))};
}

json echo_fields(const json& message, std::size_t max_bulk_ids) {
  json echo = json::object();
  if (!message.is_object()) return echo;
  for (const char* key : echo_keys) {
    auto it = message.find(key);
    if (it != message.end() && it->is_primitive()) echo[key] = *it;
  }
  auto b = message.find("b");
  if (b != message.end() && b->is_primitive()) {
    echo["b"] = *b;
  } else if (b != message.end() && b->is_structured() && b->size() <= max_bulk_ids) {
    bool flat = true;
    for (const auto& member : *b) flat = flat && member.is_primitive();
    if (flat) echo["b"] = *b;
  }
  return echo;
}

std::variant<oplog::op_body, error_info> read_op_body(const json& message) {
  if (message.contains("op")) {
    auto parsed = op_from_json(message["op"]);
    if (!parsed) return error_info{"ERR_OT_OP_NOT_APPLIED", parsed.error().message()};
    return oplog::op_body{std::move(*parsed)};
  }
  if (!is_null_or_missing(message, "create")) {
    const auto& create = message["create"];
    if (!create.is_object()) return error_info{"ERR_OT_OP_BADLY_FORMED", "Create data must be an object"};
    auto type = create.find("type");
    if (type == create.end() || !type->is_string()) return error_info{"ERR_OT_OP_BADLY_FORMED", "Missing create type"};
    auto uri = resolve_type(*type);
    if (!uri) return error_info{"ERR_DOC_TYPE_NOT_RECOGNIZED", "Unknown type"};
    oplog::create_body body{std::move(*uri), {}};
    auto data = create.find("data");
    if (data != create.end() && !data->is_null()) {
      if (!data->is_string()) return error_info{"ERR_OT_OP_NOT_APPLIED", "Initial data must be a string"};
      body.data = data->get<std::string>();
    }
    return oplog::op_body{std::move(body)};
  }
  if (!is_null_or_missing(message, "del")) {
    if (message["del"] != true) return error_info{"ERR_OT_OP_BADLY_FORMED", "del value must be true"};
    return oplog::op_body{oplog::delete_body{}};
  }
  return error_info{"ERR_MESSAGE_BADLY_FORMED", "Invalid op message"};
}

void write_op_body(json& message, const oplog::op_body& body) {
  if (const auto* edit = std::get_if<ot::op>(&body)) {
    message["op"] = op_to_json(*edit);
  } else if (const auto* create = std::get_if<oplog::create_body>(&body)) {
    message["create"] = json{{"type", create->type_uri}, {"data", create->data}};
  } else {
    message["del"] = true;
  }
}

namespace {

// The op message's fields in nlohmann's (sorted) key order, without a DOM: it is encoded once per op.
void append_op_body(std::string& out, const oplog::op_body& body) {
  if (const auto* edit = std::get_if<ot::op>(&body)) {
    out += ",\"op\":";
    json_text::append_op(out, *edit);
  }
}

}  // namespace

std::string encode_op_message(std::string_view collection, std::string_view id, const oplog::op_record& record,
                              std::string_view shown_src) {
  std::string out;
  out.reserve(96 + collection.size() + id.size() + shown_src.size());
  out += "{\"a\":\"op\",\"c\":";
  json_text::append_string(out, collection);
  if (const auto* create = std::get_if<oplog::create_body>(&record.body)) {
    out += ",\"create\":{\"data\":";
    json_text::append_string(out, create->data);
    out += ",\"type\":";
    json_text::append_string(out, create->type_uri);
    out.push_back('}');
  }
  out += ",\"d\":";
  json_text::append_string(out, id);
  if (std::holds_alternative<oplog::delete_body>(record.body)) out += ",\"del\":true";
  append_op_body(out, record.body);
  out += ",\"seq\":";
  json_text::append_uint(out, record.seq);
  out += ",\"src\":";
  json_text::append_string(out, shown_src);
  out += ",\"v\":";
  json_text::append_uint(out, record.version);
  out.push_back('}');
  return out;
}

json snapshot_json(const oplog::snapshot& snap) {
  json out = {{"v", snap.version}};
  if (snap.type_uri) {
    out["data"] = snap.data;
    out["type"] = *snap.type_uri;
  } else {
    out["type"] = nullptr;
  }
  return out;
}

void append_snapshot_json(std::string& out, const oplog::snapshot& snap) {
  if (snap.type_uri) {
    out += "{\"data\":";
    json_text::append_string(out, snap.data);
    out += ",\"type\":";
    json_text::append_string(out, *snap.type_uri);
  } else {
    out += "{\"type\":null";
  }
  out += ",\"v\":";
  json_text::append_uint(out, snap.version);
  out.push_back('}');
}

std::string encode_doc_reply(std::string_view action, std::string_view collection, std::string_view id,
                             const oplog::snapshot* snap) {
  std::string out;
  const std::size_t data_size = snap && snap->type_uri ? snap->data.size() : 0;
  out.reserve(80 + action.size() + collection.size() + id.size() + data_size + data_size / 8);
  out += "{\"a\":";
  json_text::append_string(out, action);
  out += ",\"c\":";
  json_text::append_string(out, collection);
  out += ",\"d\":";
  json_text::append_string(out, id);
  if (snap) {
    out += ",\"data\":";
    append_snapshot_json(out, *snap);
  }
  out.push_back('}');
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

std::string encode_error_reply(json echo, const error_info& error) {
  echo["error"] = json{{"code", error.code}, {"message", error.message}};
  return echo.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {
std::string dump_reply(const json& message) {
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}
}  // namespace

std::string encode_bare_error(const error_info& error) {
  return dump_reply(json{{"error", {{"code", error.code}, {"message", error.message}}}});
}

void append_error_object(std::string& out, const error_info& error) {
  out += dump_reply(json{{"error", {{"code", error.code}, {"message", error.message}}}});
}

std::string encode_handshake(std::string_view src, std::string_view alias) {
  json reply{{"a", "hs"},
             {"protocol", protocol_major},
             {"protocolMinor", protocol_minor},
             {"id", src},
             {"type", default_type_uri}};
  // otsync's own member (ShareDB's client ignores it): how others see this
  // connection's ops, so a client can tell its own in what others see.
  if (!alias.empty()) reply["alias"] = alias;
  return dump_reply(reply);
}

namespace {
// Presence positions are JavaScript numbers: integers (1.0 included) within 2^53.
std::optional<std::int64_t> exact_integer(const json& value) {
  constexpr double limit = max_safe_integer;
  if (value.is_number_unsigned()) {
    auto n = value.get<std::uint64_t>();
    if (static_cast<double>(n) > limit) return std::nullopt;
    return static_cast<std::int64_t>(n);
  }
  if (value.is_number_integer()) {
    auto n = value.get<std::int64_t>();
    if (static_cast<double>(n) < -limit || static_cast<double>(n) > limit) return std::nullopt;
    return n;
  }
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::floor(d) != d || d < -limit || d > limit) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}
}  // namespace

std::optional<ot::selection> presence_selection(const json& value) {
  if (!value.is_object()) return std::nullopt;
  auto index_member = value.find("index");
  if (index_member == value.end()) return std::nullopt;
  auto index = exact_integer(*index_member);
  if (!index || *index < 0) return std::nullopt;
  std::int64_t length = 0;
  if (auto length_member = value.find("length"); length_member != value.end()) {
    auto n = exact_integer(*length_member);
    if (!n) return std::nullopt;
    length = *n;
  }
  const auto anchor = static_cast<std::uint64_t>(*index);
  const auto focus = length < 0 ? anchor - std::min(anchor, static_cast<std::uint64_t>(-length))
                                : anchor + static_cast<std::uint64_t>(length);
  return ot::selection{anchor, focus};
}

void set_presence_selection(json& value, const ot::selection& range) {
  value["index"] = range.anchor;
  value["length"] = range.focus >= range.anchor ? static_cast<std::int64_t>(range.focus - range.anchor)
                                                : -static_cast<std::int64_t>(range.anchor - range.focus);
}

std::string encode_presence(const presence_update_request& presence, std::string_view shown_src) {
  json message = {{"a", "p"},          {"ch", presence.channel}, {"src", shown_src},
                  {"id", presence.id}, {"p", presence.value},    {"pv", nullptr}};
  if (presence.pv) message["pv"] = *presence.pv;
  if (presence.collection) message["c"] = *presence.collection;
  if (presence.doc_id) message["d"] = *presence.doc_id;
  if (presence.version) message["v"] = *presence.version;
  if (presence.type) message["t"] = *presence.type;
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_presence_subscribed(std::string_view action, std::string_view channel, std::uint64_t seq) {
  return json{{"a", action}, {"ch", channel}, {"seq", seq}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_presence_resend(std::string_view channel) {
  return json{{"a", "pr"}, {"ch", channel}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string encode_presence_resend_reply() {
  return R"({"a":"pr"})";
}

std::string encode_pong() {
  return R"({"a":"pp"})";
}

std::string encode_query_unsubscribe(const json& echo) {
  json reply = {{"a", "qu"}};
  if (echo.contains("id")) reply["id"] = echo["id"];
  return dump_reply(reply);
}

std::string encode_snapshot_reply(const json& echo, const oplog::snapshot& snap) {
  json message = snapshot_json(snap);
  message["a"] = echo.contains("a") ? echo["a"] : json(nullptr);
  message["id"] = echo.contains("id") ? echo["id"] : json(nullptr);
  message["m"] = nullptr;
  return dump_reply(message);
}

std::string encode_bulk_done(std::string_view action, const json& echo, std::string_view collection) {
  return dump_reply(json{{"a", action}, {"b", echo.contains("b") ? echo["b"] : json(nullptr)}, {"c", collection}});
}

std::string encode_bulk_page(std::string_view action, std::string_view collection, std::string_view members) {
  std::string reply = "{\"a\":";
  json_text::append_string(reply, action);
  reply += ",\"c\":";
  json_text::append_string(reply, collection);
  reply += ",\"data\":{";
  reply += members;
  reply += "}}";
  return reply;
}

}  // namespace otsync::protocol
