#include "http_target.hpp"

#include <charconv>
#include <system_error>

#include "otsync/ot/unicode.hpp"

namespace otsync::server::http_api {
namespace {

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

bool valid_utf8(std::string_view text) noexcept {
  std::size_t code_points = 0;
  return ot::unicode::validate_utf8(text, code_points) == ot::unicode::utf8_status::valid;
}

// A version or count parameter: absent (nullopt inside), or digits for a
// value up to max_version; the outer nullopt when present but anything else.
std::optional<std::optional<std::uint64_t>> count_param(const target& t, std::string_view key) {
  const auto* value = query_value(t, key);
  if (!value) return std::optional<std::uint64_t>{};
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (value->empty() || ec != std::errc{} || ptr != value->data() + value->size() || n > max_version) {
    return std::nullopt;
  }
  return std::optional<std::uint64_t>{n};
}

route bad_request(std::string message) {
  route r;
  r.kind = route_kind::bad_request;
  r.message = std::move(message);
  return r;
}

route simple(route_kind kind) {
  route r;
  r.kind = kind;
  return r;
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (in.size() - i < 3) return false;
    const int high = hex_digit(in[i + 1]);
    const int low = hex_digit(in[i + 2]);
    if (high < 0 || low < 0) return false;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return true;
}

std::string percent_encode(std::string_view in) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    if (is_unreserved(c)) {
      out += c;
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += '%';
    out += digits[byte >> 4U];
    out += digits[byte & 0xFU];
  }
  return out;
}

std::optional<target> parse_target(std::string_view raw) {
  target t;
  const auto question = raw.find('?');
  const std::string_view path = raw.substr(0, question);
  std::string_view query = question == std::string_view::npos ? std::string_view{} : raw.substr(question + 1);
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::size_t start = 1;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto piece = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!piece.empty()) {
      std::string decoded;
      if (!percent_decode(piece, decoded)) return std::nullopt;
      t.segments.push_back(std::move(decoded));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    std::string key;
    std::string value;
    if (!percent_decode(pair.substr(0, eq), key)) return std::nullopt;
    if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), value)) return std::nullopt;
    t.query.emplace_back(std::move(key), std::move(value));
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return t;
}

std::string format_target(const target& t) {
  std::string out;
  for (const auto& segment : t.segments) {
    out += '/';
    out += percent_encode(segment);
  }
  if (out.empty()) out.push_back('/');
  for (std::size_t i = 0; i < t.query.size(); ++i) {
    out += i == 0 ? '?' : '&';
    out += percent_encode(t.query[i].first);
    out += '=';
    out += percent_encode(t.query[i].second);
  }
  return out;
}

const std::string* query_value(const target& t, std::string_view key) {
  for (const auto& [k, v] : t.query) {
    if (k == key) return &v;
  }
  return nullptr;
}

route resolve_route(const target& t) {
  const auto& segments = t.segments;
  if (segments.size() == 1 && segments[0] == "healthz") return simple(route_kind::healthz);
  if (segments.size() == 1 && segments[0] == "readyz") return simple(route_kind::readyz);
  if (segments.size() == 1 && segments[0] == "metrics") return simple(route_kind::metrics);
  if (segments.empty() || (segments.size() == 1 && segments[0] == "index.html")) {
    return simple(route_kind::editor_index);
  }
  if (segments.size() == 1 && segments[0] == "editor-config.json") return simple(route_kind::editor_config);
  if (segments.size() == 2 && segments[0] == "editor") {
    route r;
    r.kind = route_kind::editor_asset;
    r.id = segments[1];  // any bytes: the editor's file table is the only thing it is looked up in
    return r;
  }
  if (segments.size() < 4 || segments[0] != "api" || segments[1] != "v1" || segments[2] != "docs") {
    return simple(route_kind::not_found);
  }
  if (segments.size() > 6 || (segments.size() == 6 && segments[5] != "ops")) return simple(route_kind::not_found);
  // Every document was named by a WebSocket client, whose frames are UTF-8:
  // other bytes name nothing (and could not be echoed in the JSON answer).
  if (!valid_utf8(segments[3]) || (segments.size() >= 5 && !valid_utf8(segments[4]))) {
    return bad_request("collection and id must be valid UTF-8");
  }
  route r;
  r.collection = segments[3];
  if (segments.size() == 4) {
    // GET /api/v1/docs/{collection}?after=ID&limit=N
    auto limit = count_param(t, "limit");
    if (!limit || (*limit && (**limit == 0 || **limit > max_list_limit))) {
      return bad_request("limit must be an integer from 1 to 1000");
    }
    r.kind = route_kind::list_documents;
    if (const auto* after = query_value(t, "after")) r.after = *after;
    r.limit = static_cast<std::size_t>(limit->value_or(100));
    return r;
  }
  r.id = segments[4];
  if (segments.size() == 6) {
    // GET /api/v1/docs/{collection}/{id}/ops?from=A&to=B
    auto from = count_param(t, "from");
    auto to = count_param(t, "to");
    if (!from || !to || (*to && **to < from->value_or(0))) {
      return bad_request("from and to must be integers from 0 to 9007199254740991 with from <= to");
    }
    r.kind = route_kind::ops;
    r.from = from->value_or(0);
    // No overflow: from is at most 2^53 - 1.
    r.to = to->value_or(r.from + max_op_range);
    if (r.to - r.from > max_op_range) r.to = r.from + max_op_range;
    return r;
  }
  // GET /api/v1/docs/{collection}/{id}[?v=N]
  auto version = count_param(t, "v");
  if (!version) return bad_request("v must be an integer from 0 to 9007199254740991");
  if (*version) {
    r.kind = route_kind::document_at;
    r.version = **version;
  } else {
    r.kind = route_kind::document;
  }
  return r;
}

}  // namespace otsync::server::http_api
