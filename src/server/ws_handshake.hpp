// The server's half of the WebSocket opening handshake (RFC 6455 4.2): the
// 101 response to a valid upgrade request, or the 400/426 saying what is
// wrong with it. After the 101 the connection speaks frames (ws_frame.hpp).
//
// Thread safety: pure.
#pragma once

#include "http_routes.hpp"

namespace otsync::server {

/// `request` is an upgrade (beast::websocket::is_upgrade). Status 101 means accepted.
http_response websocket_upgrade_response(const http_request& request);

}  // namespace otsync::server
