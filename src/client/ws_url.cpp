#include "otsync/client/ws_url.hpp"

#include <stdexcept>
#include <string_view>

namespace otsync::client {

ws_url parse_ws_url(const std::string& url) {
  constexpr std::string_view plain = "ws://";
  constexpr std::string_view secure = "wss://";
  ws_url out;
  std::string rest;
  if (url.rfind(plain, 0) == 0) {
    rest = url.substr(plain.size());
  } else if (url.rfind(secure, 0) == 0) {
    rest = url.substr(secure.size());
    out.tls = true;
  } else {
    throw std::invalid_argument("unsupported URL (want ws://HOST:PORT/PATH or wss://HOST:PORT/PATH): " + url);
  }
  auto slash = rest.find('/');
  std::string authority = slash == std::string::npos ? rest : rest.substr(0, slash);
  out.path = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = authority.rfind(':');
  if (colon == std::string::npos || authority.back() == ']') {
    out.host = authority;
    out.port = out.tls ? "443" : "80";
  } else {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
  }
  if (out.host.empty() || out.port.empty()) throw std::invalid_argument("no host or port in URL: " + url);
  out.name = out.host.size() > 2 && out.host.front() == '[' ? out.host.substr(1, out.host.size() - 2) : out.host;
  return out;
}

}  // namespace otsync::client
