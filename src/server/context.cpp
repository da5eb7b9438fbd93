#include "context.hpp"

namespace otsync::server {

std::string_view address_slots::acquire(const std::string& address, std::size_t total_limit,
                                        std::size_t per_address_limit, std::string_view total_limit_name,
                                        std::string_view per_address_name) {
  if (total_limit != 0 && open_ >= total_limit) return total_limit_name;
  auto& from_address = per_address_[address];
  if (per_address_limit != 0 && from_address >= per_address_limit) {
    if (from_address == 0) per_address_.erase(address);
    return per_address_name;
  }
  ++from_address;
  ++open_;
  return {};
}

void address_slots::release(const std::string& address) {
  --open_;
  auto it = per_address_.find(address);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

std::string_view server_context::acquire_connection(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  return connections_.acquire(address, options.max_connections, options.max_connections_per_address, "connections",
                              "connections_per_address");
}

void server_context::release_connection(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  connections_.release(address);
}

std::string_view server_context::acquire_handshake(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  return handshakes_.acquire(address, options.max_tls_handshakes, options.max_tls_handshakes_per_address,
                             "tls_handshakes", "tls_handshakes_per_address");
}

void server_context::release_handshake(const std::string& address) {
  std::lock_guard lock(connections_mutex_);
  handshakes_.release(address);
}

}  // namespace otsync::server
