// Ops as the Redis store keeps them in a document's list and publishes them
// on its channel: `{"v","src","seq","ts"}` plus the ShareDB body.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../op_body_json.hpp"
#include "otsync/oplog/op_record.hpp"
#include "otsync/ot/result.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store::redis {

inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

// An op as stored in the list: {"v","src","seq","ts", op|create|del}.
inline ot::result<std::string> encode_op(const oplog::op_record& op) {
  auto body = detail::encode_op_body(op.body);
  if (!body) return body.error();
  nlohmann::json j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded()) return errc::invalid_argument;
  j["v"] = op.version;
  j["src"] = op.src;
  j["seq"] = op.seq;
  j["ts"] = op.timestamp_ms;
  return dump(j);
}

inline ot::result<oplog::op_record> decode_op(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("v") || !j["v"].is_number_unsigned() || !j.contains("src") ||
      !j["src"].is_string() || !j.contains("seq") || !j["seq"].is_number_unsigned()) {
    return errc::corrupt;
  }
  oplog::op_record op;
  op.version = j["v"].get<std::uint64_t>();
  op.src = j["src"].get<std::string>();
  op.seq = j["seq"].get<std::uint64_t>();
  op.timestamp_ms = j.value("ts", std::int64_t{0});
  nlohmann::json body = nlohmann::json::object();
  for (const char* k : {"op", "create", "del"}) {
    if (j.contains(k)) body[k] = j[k];
  }
  auto decoded = detail::decode_op_body(dump(body));
  if (!decoded) return errc::corrupt;
  op.body = std::move(*decoded);
  return op;
}

}  // namespace otsync::store::redis
