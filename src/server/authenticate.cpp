#include "authenticate.hpp"

#include <boost/beast/http/field.hpp>

#include "http_target.hpp"

namespace otsync::server {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view bearer_protocol_prefix = "otsync.bearer.";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `fn` with each comma-separated entry of a header's value.
template <class Fn>
void for_each_entry(std::string_view value, Fn fn) {
  while (!value.empty()) {
    auto comma = value.find(',');
    fn(trim(value.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// The token the request carries, if any; `malformed` when an Authorization header is not `Bearer`.
std::optional<std::string> find_token(const http_request& request, bool websocket, bool& malformed) {
  if (auto it = request.find(http::field::authorization); it != request.end()) {
    std::string_view value = trim(it->value());
    constexpr std::string_view scheme = "Bearer ";
    if (value.size() > scheme.size() && std::equal(scheme.begin(), scheme.end(), value.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return std::string(trim(value.substr(scheme.size())));
    }
    malformed = true;
    return std::nullopt;
  }
  if (websocket) {
    std::optional<std::string> found;
    for (auto it = request.find(http::field::sec_websocket_protocol); it != request.end() && !found; ++it) {
      if (it->name() != http::field::sec_websocket_protocol) break;
      for_each_entry(it->value(), [&](std::string_view entry) {
        if (!found && entry.starts_with(bearer_protocol_prefix)) {
          found = std::string(entry.substr(bearer_protocol_prefix.size()));
        }
      });
    }
    if (found) return found;
  }
  if (auto target = http_api::parse_target(request.target())) {
    if (const auto* token = http_api::query_value(*target, "access_token")) return *token;
  }
  return std::nullopt;
}

}  // namespace

bool offers_subprotocol(const http_request& request) {
  bool offered = false;
  for (auto it = request.find(http::field::sec_websocket_protocol); it != request.end(); ++it) {
    if (it->name() != http::field::sec_websocket_protocol) break;
    for_each_entry(it->value(), [&](std::string_view entry) { offered = offered || entry == websocket_subprotocol; });
  }
  return offered;
}

std::variant<caller, auth_refusal> authenticate(const auth::jwt_verifier* verifier, const http_request& request,
                                                bool websocket, std::chrono::system_clock::time_point now) {
  if (verifier == nullptr) return caller{auth::access_rules::allow_all(), {}, std::nullopt};
  bool malformed = false;
  auto token = find_token(request, websocket, malformed);
  if (malformed) {
    return auth_refusal{"ERR_UNAUTHORIZED", "The Authorization header must be \"Bearer <token>\"", "malformed"};
  }
  if (!token || token->empty()) {
    return auth_refusal{"ERR_UNAUTHORIZED",
                        websocket ? "A bearer token is required (Authorization header, Sec-WebSocket-Protocol "
                                    "otsync.bearer.<token>, or access_token parameter)"
                                  : "A bearer token is required (Authorization header or access_token parameter)",
                        "missing"};
  }
  auto verified = verifier->verify(*token, now);
  if (auto* error = std::get_if<auth::token_error>(&verified)) {
    return auth_refusal{"ERR_UNAUTHORIZED", "The bearer token was refused: " + error->message,
                        std::string(auth::token_errc_name(error->kind))};
  }
  auto& token_info = std::get<auth::verified_token>(verified);
  return caller{std::move(token_info.access), std::move(token_info.subject), token_info.expires_at};
}

}  // namespace otsync::server
