#include "stored_op.hpp"

#include <charconv>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "otsync/ot/unicode.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/json_text.hpp"
#include "otsync/protocol/op_json.hpp"

namespace otsync::redis {
namespace {

namespace json_text = protocol::json_text;

bool valid_utf8(std::string_view text) {
  std::size_t code_points = 0;
  return ot::unicode::validate_utf8(text, code_points) == ot::unicode::utf8_status::valid;
}

// Every text the op carries: nlohmann's strict encoder refused invalid UTF-8,
// and the stored bytes must stay what it wrote.
bool op_texts_valid(const ot::op& operation) {
  for (const auto& c : operation) {
    if ((c.kind() == ot::component_kind::insert || c.has_text()) && !valid_utf8(c.text())) return false;
  }
  return true;
}

void append_int(std::string& out, std::int64_t value) {
  char digits[21];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

}  // namespace

std::optional<std::string> encode_stored_op(const oplog::op_record& op) {
  if (!valid_utf8(op.src) || !valid_utf8(op.author)) return std::nullopt;
  std::string out;
  out.reserve(64 + op.src.size());
  // Keys in sorted order, as nlohmann's std::map-backed objects wrote them
  // ("author" only when there is one, so ops without keep their old bytes).
  if (!op.author.empty()) {
    out += "{\"author\":";
    json_text::append_string(out, op.author);
    out.push_back(',');
  } else {
    out.push_back('{');
  }
  const bool body_written = std::visit(
      [&out](const auto& part) -> bool {
        using part_type = std::decay_t<decltype(part)>;
        if constexpr (std::is_same_v<part_type, ot::op>) {
          if (!op_texts_valid(part)) return false;
          out += "\"op\":";
          json_text::append_op(out, part);
        } else if constexpr (std::is_same_v<part_type, oplog::create_body>) {
          if (!valid_utf8(part.type_uri) || !valid_utf8(part.data)) return false;
          out += "\"create\":{\"data\":";
          json_text::append_string(out, part.data);
          out += ",\"type\":";
          json_text::append_string(out, part.type_uri);
          out.push_back('}');
        } else {
          out += "\"del\":true";
        }
        return true;
      },
      op.body);
  if (!body_written) return std::nullopt;
  out += ",\"seq\":";
  json_text::append_uint(out, op.seq);
  out += ",\"src\":";
  json_text::append_string(out, op.src);
  out += ",\"ts\":";
  append_int(out, op.timestamp_ms);
  out += ",\"v\":";
  json_text::append_uint(out, op.version);
  out.push_back('}');
  return out;
}

std::optional<oplog::op_record> decode_stored_op(std::string_view text) {
  const nlohmann::json j = protocol::parse_json_bounded(text);
  if (!j.is_object()) return std::nullopt;
  const auto version = j.find("v");
  const auto src = j.find("src");
  const auto seq = j.find("seq");
  if (version == j.end() || !version->is_number_unsigned() || src == j.end() || !src->is_string() || seq == j.end() ||
      !seq->is_number_unsigned()) {
    return std::nullopt;
  }
  oplog::op_record op;
  op.version = version->get<std::uint64_t>();
  op.src = src->get<std::string>();
  op.seq = seq->get<std::uint64_t>();
  if (const auto author = j.find("author"); author != j.end()) {
    if (!author->is_string()) return std::nullopt;
    op.author = author->get<std::string>();
  }
  if (const auto ts = j.find("ts"); ts != j.end()) {
    // An integer in range, as the encoder writes it: converting anything else is undefined behaviour.
    if (ts->is_number_unsigned()) {
      if (ts->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    } else if (!ts->is_number_integer()) {
      return std::nullopt;
    }
    op.timestamp_ms = ts->get<std::int64_t>();
  }
  // Exactly one body.
  const auto edit = j.find("op");
  const auto create = j.find("create");
  const auto del = j.find("del");
  if ((edit != j.end()) + (create != j.end()) + (del != j.end()) != 1) return std::nullopt;
  if (edit != j.end()) {
    auto decoded = protocol::op_from_json(*edit);
    if (!decoded) return std::nullopt;
    op.body = std::move(*decoded);
  } else if (create != j.end()) {
    if (!create->is_object()) return std::nullopt;
    const auto type = create->find("type");
    const auto data = create->find("data");
    if (type == create->end() || !type->is_string() || data == create->end() || !data->is_string()) {
      return std::nullopt;
    }
    op.body = oplog::create_body{type->get<std::string>(), data->get<std::string>()};
  } else {
    if (*del != true) return std::nullopt;
    op.body = oplog::delete_body{};
  }
  return op;
}

}  // namespace otsync::redis
