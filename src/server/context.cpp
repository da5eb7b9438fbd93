#include "context.hpp"

namespace otsync::server {

std::string_view server_context::acquire_connection(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  if (options.max_connections != 0 && connections_open_ >= options.max_connections) return "connections";
  auto& from_address = connections_per_address_[address];
  if (options.max_connections_per_address != 0 && from_address >= options.max_connections_per_address) {
    if (from_address == 0) connections_per_address_.erase(address);
    return "connections_per_address";
  }
  ++from_address;
  ++connections_open_;
  return {};
}

void server_context::release_connection(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  --connections_open_;
  auto it = connections_per_address_.find(address);
  if (it != connections_per_address_.end() && --it->second == 0) connections_per_address_.erase(it);
}

std::string_view server_context::acquire_handshake(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  if (options.max_tls_handshakes != 0 && handshakes_open_ >= options.max_tls_handshakes) return "tls_handshakes";
  auto& from_address = handshakes_per_address_[address];
  if (options.max_tls_handshakes_per_address != 0 && from_address >= options.max_tls_handshakes_per_address) {
    if (from_address == 0) handshakes_per_address_.erase(address);
    return "tls_handshakes_per_address";
  }
  ++from_address;
  ++handshakes_open_;
  return {};
}

void server_context::release_handshake(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  --handshakes_open_;
  auto it = handshakes_per_address_.find(address);
  if (it != handshakes_per_address_.end() && --it->second == 0) handshakes_per_address_.erase(it);
}

}  // namespace otsync::server
