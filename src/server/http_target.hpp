// The pure half of the HTTP endpoints: a request target split into
// percent-decoded path segments and query parameters, and the route it names
// with its parameters validated. No sockets, no stores, no server state, so
// that tests/fuzz/fuzz_http can drive it with arbitrary bytes.
//
// Thread safety: all functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace otsync::server::http_api {

/// The largest request body http_session reads (Beast's parser refuses more).
inline constexpr std::size_t max_request_body = 64 * 1024;
/// Most documents one `GET /api/v1/docs/{collection}` returns (`limit`).
inline constexpr std::size_t max_list_limit = 1000;
/// Most ops one `GET .../ops` returns.
inline constexpr std::uint64_t max_op_range = 10000;
/// The largest version the API takes or gives: 2^53 - 1, the largest integer
/// a JS client reads exactly.
inline constexpr std::uint64_t max_version = (1ULL << 53U) - 1U;

/// A request target: `/a/b%2Fc?x=1&y` is segments {"a", "b/c"} and query
/// {{"x", "1"}, {"y", ""}}. The path is split at its raw '/' first and each
/// piece decoded after, so a decoded '/' (from `%2F`) stays inside its segment;
/// empty pieces (`//`) are skipped, so no segment is empty.
struct target {
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;
  friend bool operator==(const target&, const target&) = default;
};

/// Decodes `%XX` escapes (any byte, '/' and NUL included) into `out`; false
/// when an escape is cut short or not hexadecimal. '+' stays '+'.
bool percent_decode(std::string_view in, std::string& out);

/// Escapes every byte except RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~).
std::string percent_encode(std::string_view in);

/// nullopt when the target does not start with '/' or holds a malformed escape.
std::optional<target> parse_target(std::string_view raw);

/// The target text for `t`, every segment and parameter percent-encoded:
/// `parse_target(format_target(t)) == t` for every `t` whose segments are non-empty.
std::string format_target(const target& t);

/// The first value of parameter `key`, or nullptr.
const std::string* query_value(const target& t, std::string_view key);

enum class route_kind : std::uint8_t {
  healthz,
  readyz,
  metrics,
  list_documents,  ///< GET /api/v1/docs/{collection}?after=ID&limit=N
  document,        ///< GET /api/v1/docs/{collection}/{id}
  document_at,     ///< GET /api/v1/docs/{collection}/{id}?v=N
  ops,             ///< GET /api/v1/docs/{collection}/{id}/ops?from=A&to=B
  editor_index,    ///< GET / (and /index.html): the editor page
  editor_asset,    ///< GET /editor/{name}: a file of the editor page (`id` is the name, not yet checked)
  editor_config,   ///< GET /editor-config.json: the page's settings (token URL)
  not_found,       ///< 404 ERR_NOT_FOUND
  bad_request,     ///< 400 ERR_BAD_REQUEST with `message`
};

/// What a target asks for, its parameters checked: every field the kind
/// uses is in range, so the handler only talks to the store.
struct route {
  route_kind kind = route_kind::not_found;
  std::string collection;     ///< list_documents, document, document_at, ops: non-empty valid UTF-8
  std::string id;             ///< document, document_at, ops: non-empty valid UTF-8
  std::string after;          ///< list_documents: ids greater than this (empty: from the start)
  std::size_t limit = 0;      ///< list_documents: 1 to max_list_limit
  std::uint64_t version = 0;  ///< document_at: at most max_version
  std::uint64_t from = 0;     ///< ops: the first version, at most max_version
  std::uint64_t to = 0;       ///< ops: one past the last; from <= to <= from + max_op_range
  std::string message;        ///< bad_request: why
};

/// The route `t` names (the method is checked by the caller).
route resolve_route(const target& t);

}  // namespace otsync::server::http_api
