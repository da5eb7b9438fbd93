// libFuzzer target: otsyncd's HTTP request path without sockets: bytes into
// Beast's request parser with http_session's limits, then the target parsing
// and the REST routes' parameter checks (src/server/http_target.hpp).
//
// Input: byte 0 picks the mode.
//   even: byte 1 cuts the rest into reads, which is an HTTP request stream.
//         Each parsed request goes where http_session sends it: an upgrade
//         to the /ws check, anything else to parse_target and resolve_route.
//   odd:  the rest builds a well-formed target (arbitrary bytes in segments
//         and parameters, percent-encoded), and an ops range with decimal
//         from/to (huge ones too).
// Invariants, each an abort:
//   - a parsed body never exceeds the 64 KiB limit;
//   - a target's segments are exactly the percent-decodings of the non-empty
//     pieces between its raw '/' (a decoded %2F stays inside its segment),
//     none empty; the parameters likewise between '&' and the first '=';
//   - format_target then parse_target gives the same target back;
//   - resolve_route's routes are in range: 1 <= limit <= 1000, versions at
//     most 2^53 - 1, from <= to <= from + 10000, names valid UTF-8, a bad
//     request carries a message; and ops ranges agree with the decimal
//     values given (a 400 exactly when one is above 2^53 - 1 or to < from).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "http_target.hpp"
#include "otsync/ot/unicode.hpp"

namespace {

namespace http = boost::beast::http;
namespace api = otsync::server::http_api;

// As src/server/http_session.cpp.
constexpr std::size_t max_request_body = api::max_request_body;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_http: invariant violated: %s\n", what);
  std::abort();
}

void require(bool condition, const char* what) {
  if (!condition) fail(what);
}

bool valid_utf8(std::string_view text) {
  std::size_t code_points = 0;
  return otsync::ot::unicode::validate_utf8(text, code_points) == otsync::ot::unicode::utf8_status::valid;
}

// A second, plain decoder: %XX with two hex digits, anything else as it is.
std::optional<std::string> reference_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const std::string hex(in.substr(i + 1, 2));
    if (!std::isxdigit(static_cast<unsigned char>(hex[0])) || !std::isxdigit(static_cast<unsigned char>(hex[1]))) {
      return std::nullopt;
    }
    out += static_cast<char>(std::strtoul(hex.c_str(), nullptr, 16));
    i += 2;
  }
  return out;
}

// A decimal string's value when it is all digits and fits 64 bits.
std::optional<std::uint64_t> decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (n > (UINT64_MAX - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  return n;
}

void check_route(const api::target& t, const api::route& r) {
  switch (r.kind) {
    case api::route_kind::bad_request:
      require(!r.message.empty(), "a bad request without a message");
      break;
    case api::route_kind::list_documents:
      require(r.limit >= 1 && r.limit <= api::max_list_limit, "a list limit out of range");
      require(!r.collection.empty() && valid_utf8(r.collection), "a list of a bad collection");
      break;
    case api::route_kind::document_at:
      require(r.version <= api::max_version, "a version above 2^53 - 1");
      [[fallthrough]];
    case api::route_kind::document:
      require(!r.collection.empty() && valid_utf8(r.collection), "a document in a bad collection");
      require(!r.id.empty() && valid_utf8(r.id), "a document with a bad id");
      break;
    case api::route_kind::ops: {
      require(!r.collection.empty() && valid_utf8(r.collection) && !r.id.empty() && valid_utf8(r.id),
              "ops of a badly named document");
      require(r.from <= api::max_version, "ops from above 2^53 - 1");
      require(r.from <= r.to && r.to - r.from <= api::max_op_range, "an ops range out of bounds");
      // The range is the one asked for.
      const auto* from = api::query_value(t, "from");
      const auto* to = api::query_value(t, "to");
      const std::uint64_t want_from = from ? decimal(*from).value_or(UINT64_MAX) : 0;
      require(r.from == want_from, "ops from is not the parameter");
      if (to) {
        const auto want_to = decimal(*to);
        require(want_to && *want_to <= api::max_version, "an ops range accepted with a bad `to`");
        require(r.to == std::min(*want_to, want_from + api::max_op_range), "ops to is not the parameter");
      }
      break;
    }
    case api::route_kind::healthz:
    case api::route_kind::readyz:
    case api::route_kind::metrics:
      require(t.segments.size() == 1, "a single-segment route with more segments");
      break;
    case api::route_kind::editor_index:
      require(t.segments.size() <= 1, "the editor page with more segments");
      break;
    case api::route_kind::editor_config:
      require(t.segments.size() == 1, "the editor config with more segments");
      break;
    case api::route_kind::editor_asset:
      require(t.segments.size() == 2 && t.segments[0] == "editor" && r.id == t.segments[1],
              "an editor file not named by its segment");
      break;
    case api::route_kind::not_found:
      break;
  }
}

void check_target(std::string_view raw) {
  auto parsed = api::parse_target(raw);
  if (!parsed) return;
  const auto& t = *parsed;
  // Segments: the decoded non-empty pieces between raw slashes.
  const auto path = raw.substr(0, raw.find('?'));
  require(!path.empty() && path[0] == '/', "a target accepted without a leading '/'");
  std::size_t index = 0;
  std::size_t start = 1;
  while (start <= path.size()) {
    const auto slash = std::min(path.find('/', start), path.size());
    const auto piece = path.substr(start, slash - start);
    if (!piece.empty()) {
      require(index < t.segments.size(), "fewer segments than pieces between slashes");
      const auto expected = reference_decode(piece);
      require(expected && *expected == t.segments[index], "a segment is not its piece decoded");
      ++index;
    }
    start = slash + 1;
  }
  require(index == t.segments.size(), "more segments than pieces between slashes");
  for (const auto& segment : t.segments) require(!segment.empty(), "an empty segment");
  auto again = api::parse_target(api::format_target(t));
  require(again && *again == t, "format_target does not parse back to the same target");
  check_route(t, api::resolve_route(t));
}

// Mode even: a request stream through Beast's parser, read by read.
void http_mode(std::uint8_t split, std::string_view stream) {
  std::string buffer;  // what a read left unparsed, as Beast's flat_buffer
  std::size_t pos = 0;
  const std::size_t read_size = split == 0 ? stream.size() + 1 : split;
  for (int requests = 0; requests < 8; ++requests) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(max_request_body);
    boost::beast::error_code ec;
    for (;;) {
      if (!buffer.empty()) {
        const auto used = parser.put(boost::asio::buffer(buffer.data(), buffer.size()), ec);
        require(used <= buffer.size(), "the parser used more than it was given");
        buffer.erase(0, used);
        if (ec == http::error::need_more) {
          ec = {};
        } else if (ec) {
          return;  // http_session answers (bad target) or drops the connection
        } else if (parser.is_done()) {
          break;
        } else if (used > 0) {
          continue;
        }
      }
      if (pos == stream.size()) {
        parser.put_eof(ec);
        if (ec || !parser.is_done()) return;
        break;
      }
      const auto n = std::min(read_size, stream.size() - pos);
      buffer.append(stream.substr(pos, n));
      pos += n;
    }
    auto request = parser.release();
    require(request.body().size() <= max_request_body, "a body above the limit");
    if (boost::beast::websocket::is_upgrade(request)) {
      // http_session: only the path decides (the handshake checks are Beast's).
      const std::string_view target = request.target();
      (void)(target.substr(0, target.find('?')) == "/ws");
    } else {
      check_target(request.target());
    }
    if (!request.keep_alive()) return;
  }
}

// Mode odd: targets built from parts.
void parts_mode(FuzzedDataProvider& in) {
  api::target t;
  const auto segments = in.ConsumeIntegralInRange<std::size_t>(0, 7);
  for (std::size_t i = 0; i < segments; ++i) {
    auto s = in.ConsumeRandomLengthString(64);
    if (!s.empty()) t.segments.push_back(std::move(s));
  }
  const auto params = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  for (std::size_t i = 0; i < params; ++i) {
    auto key = in.ConsumeRandomLengthString(16);
    auto value = in.ConsumeRandomLengthString(32);
    t.query.emplace_back(std::move(key), std::move(value));
  }
  const auto raw = api::format_target(t);
  auto parsed = api::parse_target(raw);
  require(parsed && *parsed == t, "a well-formed target does not parse back");
  check_target(raw);

  // An ops range with decimal bounds: 400 exactly when one is out of range or inverted.
  const bool with_to = in.ConsumeBool();
  auto number = [&in]() -> std::string {
    switch (in.ConsumeIntegral<std::uint8_t>() % 5) {
      case 0:
        return "18446744073709551615";
      case 1:
        return "9007199254740991";
      case 2:
        return "9007199254740992";
      case 3:
        return in.ConsumeRandomLengthString(24);
      default:
        return std::to_string(in.ConsumeIntegral<std::uint64_t>() >> in.ConsumeIntegralInRange<unsigned>(0, 63));
    }
  };
  const std::string from = number();
  const std::string to = number();
  api::target ops{{"api", "v1", "docs", "c", "d", "ops"}, {{"from", from}}};
  if (with_to) ops.query.emplace_back("to", to);
  const auto r = api::resolve_route(ops);
  const auto f = decimal(from);
  const auto e = decimal(to);
  const bool good = f && *f <= api::max_version && (!with_to || (e && *e <= api::max_version && *e >= *f));
  require(good == (r.kind == api::route_kind::ops), "an ops range judged wrongly");
  require(good || r.kind == api::route_kind::bad_request, "a bad ops range that is not a 400");
  check_route(ops, r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  if ((data[0] & 1U) == 0) {
    http_mode(data[1], std::string_view(reinterpret_cast<const char*>(data) + 2, size - 2));
    return 0;
  }
  FuzzedDataProvider in(data + 1, size - 1);
  parts_mode(in);
  return 0;
}
