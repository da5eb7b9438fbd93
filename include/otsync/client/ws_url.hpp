// WebSocket URLs as the client library and otsync-load take them.
//
// Thread safety: pure functions.
#pragma once

#include <string>

namespace otsync::client {

/// `ws://HOST[:PORT][/PATH]` or `wss://HOST[:PORT][/PATH]`, split up (the port
/// defaults to 80 for ws://, 443 for wss://; the path to `/`).
struct ws_url {
  std::string host;  ///< as written, for the Host header (an IPv6 literal keeps its brackets)
  std::string name;  ///< to resolve, and for TLS to verify: `host` without the brackets
  std::string port;
  std::string path;
  bool tls = false;  ///< wss://: TLS under the WebSocket
};

/// Throws std::invalid_argument naming the URL when it is not a ws:// or
/// wss:// URL with a host.
ws_url parse_ws_url(const std::string& url);

}  // namespace otsync::client
