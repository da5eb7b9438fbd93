#include "otsync/protocol/op_json.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

namespace otsync::protocol {
namespace {

using ot::errc;

/// A JSON number as a length. Zero passes (`check` names it, after any
/// earlier component's error); `negative_error` names a value below zero.
ot::result<std::uint64_t> read_length(const nlohmann::json& value, errc negative_error) {
  if (value.is_number_unsigned()) {
    const auto n = value.get<std::uint64_t>();
    if (n > ot::max_length) return errc::length_out_of_range;
    return n;
  }
  if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    if (n < 0) return negative_error;
    if (static_cast<std::uint64_t>(n) > ot::max_length) return errc::length_out_of_range;
    return static_cast<std::uint64_t>(n);
  }
  const auto n = value.get<double>();
  if (std::isnan(n) || n < 0) return negative_error;
  if (std::floor(n) != n) return errc::non_integer_length;
  if (n > static_cast<double>(ot::max_length)) return errc::length_out_of_range;
  return static_cast<std::uint64_t>(n);
}

ot::result<ot::component> read_component(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_float: {
      auto length = read_length(value, errc::non_positive_skip);
      if (!length) return length.error();
      return ot::component::skip(*length);
    }
    case nlohmann::json::value_t::string:
      return ot::component::insert(value.get<std::string>());
    case nlohmann::json::value_t::object: {
      const auto d = value.find("d");
      if (d == value.end()) return errc::delete_not_number_or_string;
      if (d->is_string()) return ot::component::erase(d->get<std::string>());
      if (!d->is_number()) return errc::delete_not_number_or_string;
      auto length = read_length(*d, errc::empty_delete);
      if (!length) return length.error();
      return ot::component::erase(*length);
    }
    case nlohmann::json::value_t::array:
      return errc::delete_not_number_or_string;  // JS reads `[].d` as undefined
    case nlohmann::json::value_t::null:
      return errc::null_component;
    case nlohmann::json::value_t::boolean:
      return errc::boolean_component;
    default:
      return errc::delete_not_number_or_string;
  }
}

}  // namespace

ot::result<ot::op> op_from_json_unchecked(const nlohmann::json& value) {
  if (!value.is_array()) return errc::op_not_array;
  ot::op operation;
  operation.reserve(value.size());
  for (const auto& item : value) {
    auto c = read_component(item);
    if (!c) {
      // checkOp reports the first bad component; one before this one may be
      // bad in a way only `check` sees (adjacent skips, empty text).
      const auto earlier = ot::check(operation);
      if (earlier && earlier != errc::trailing_skip) return earlier;
      return c.error();
    }
    operation.push_back(std::move(*c));
  }
  return operation;
}

ot::result<ot::op> op_from_json(const nlohmann::json& value) {
  auto operation = op_from_json_unchecked(value);
  if (!operation) return operation;
  if (auto error = ot::validate(*operation)) return error;
  return operation;
}

nlohmann::json op_to_json(const ot::op& operation) {
  auto out = nlohmann::json::array();
  for (const auto& c : operation) {
    switch (c.kind()) {
      case ot::component_kind::skip:
        out.push_back(c.length());
        break;
      case ot::component_kind::insert:
        out.push_back(c.text());
        break;
      case ot::component_kind::erase:
        if (c.has_text()) {
          out.push_back({{"d", c.text()}});
        } else {
          out.push_back({{"d", c.length()}});
        }
        break;
    }
  }
  return out;
}

ot::result<ot::selection> selection_from_json(const nlohmann::json& value) {
  // Cursor positions are code-point offsets: non-negative integers below 2^53
  // (JS would also map negative or fractional ones, and longer arrays).
  const auto position = [](const nlohmann::json& v) -> ot::result<std::uint64_t> {
    if (!v.is_number()) return errc::invalid_selection;
    if (v.is_number_unsigned()) {
      if (v.get<std::uint64_t>() > ot::max_length) return errc::length_out_of_range;
      return v.get<std::uint64_t>();
    }
    if (v.is_number_integer()) {
      if (v.get<std::int64_t>() < 0) return errc::invalid_selection;
      if (static_cast<std::uint64_t>(v.get<std::int64_t>()) > ot::max_length) return errc::length_out_of_range;
      return static_cast<std::uint64_t>(v.get<std::int64_t>());
    }
    const auto n = v.get<double>();
    if (std::isnan(n) || n < 0 || std::floor(n) != n) return errc::invalid_selection;
    if (n > static_cast<double>(ot::max_length)) return errc::length_out_of_range;
    return static_cast<std::uint64_t>(n);
  };
  if (value.is_array() && value.size() == 2) {
    auto anchor = position(value[0]);
    if (!anchor) return anchor.error();
    auto focus = position(value[1]);
    if (!focus) return focus.error();
    return ot::selection{*anchor, *focus};
  }
  if (value.is_array()) return errc::invalid_selection;
  auto caret = position(value);
  if (!caret) return caret.error();
  return ot::selection{*caret, *caret};
}

}  // namespace otsync::protocol
