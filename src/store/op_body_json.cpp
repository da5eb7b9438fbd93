#include "op_body_json.hpp"

#include <nlohmann/json.hpp>

#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/protocol/op_json.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store::detail {

using nlohmann::json;

ot::result<std::string> encode_op_body(const oplog::op_body& body) {
  // The wire form (one codec for op bodies): {"op":[...]}, {"create":{...}} or {"del":true}.
  json value = json::object();
  protocol::write_op_body(value, body);
  try {
    return value.dump();
  } catch (const json::exception&) {  // invalid UTF-8 in a string
    return errc::invalid_argument;
  }
}

ot::result<oplog::op_body> decode_op_body(std::string_view text) {
  const json value = protocol::parse_json_bounded(text);
  if (!value.is_object() || value.size() != 1) return errc::corrupt;
  if (const auto edit = value.find("op"); edit != value.end()) {
    auto decoded = protocol::op_from_json(*edit);
    if (!decoded) return errc::corrupt;
    return oplog::op_body{std::move(*decoded)};
  }
  if (const auto create = value.find("create"); create != value.end()) {
    if (!create->is_object()) return errc::corrupt;
    const auto type = create->find("type");
    const auto data = create->find("data");
    if (type == create->end() || !type->is_string() || data == create->end() || !data->is_string()) {
      return errc::corrupt;
    }
    return oplog::op_body{oplog::create_body{type->get<std::string>(), data->get<std::string>()}};
  }
  if (const auto del = value.find("del"); del != value.end() && *del == true)
    return oplog::op_body{oplog::delete_body{}};
  return errc::corrupt;
}

}  // namespace otsync::store::detail
