// Who an HTTP request or WebSocket upgrade is from, under --auth: the bearer
// token is looked for in the `Authorization` header, then (WebSocket only,
// since browsers cannot set headers on one) in a `Sec-WebSocket-Protocol`
// entry `otsync.bearer.<token>`, then in an `access_token` query parameter.
// Nothing here logs or returns a token.
//
// Thread safety: pure, given a verifier (immutable).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "http_routes.hpp"
#include "otsync/auth/access.hpp"
#include "otsync/auth/jwt.hpp"

namespace otsync::server {

/// The subprotocol a browser offers (with `otsync.bearer.<token>`) and the server selects.
inline constexpr std::string_view websocket_subprotocol = "otsync";

/// An authenticated caller: what it may do, who it is (the token's `sub`,
/// empty without one) and when its token expires.
struct caller {
  auth::access_rules access;
  std::string subject;
  std::optional<std::chrono::system_clock::time_point> expires_at;
};

/// A refused request: 401 with `code` and `message`, and the reason for the
/// `otsync_auth_failures_total{reason}` counter.
struct auth_refusal {
  std::string code;
  std::string message;
  std::string reason;
};

/// `verifier` null: --auth none, everyone may do everything.
std::variant<caller, auth_refusal> authenticate(const auth::jwt_verifier* verifier, const http_request& request,
                                                bool websocket, std::chrono::system_clock::time_point now);

/// Whether the upgrade request offers `websocket_subprotocol` (the response must then select it).
bool offers_subprotocol(const http_request& request);

}  // namespace otsync::server
