// STUB, replaced by the lead's implementation: parse_redis_uri is real,
// open_redis_store returns nullptr (so every Redis store test fails).
#include "otsync/store/redis_store.hpp"

#include <charconv>
#include <limits>

#include "otsync/store/open_error.hpp"

namespace otsync::store {
namespace {

constexpr std::string_view scheme = "redis://";

template <class Int>
bool parse_decimal(std::string_view text, Int& out) {
  if (text.empty() || text.front() == '+' || text.front() == '-') return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size();
}

}  // namespace

ot::result<redis_options> parse_redis_uri(std::string_view uri) {
  if (!uri.starts_with(scheme)) return open_errc::invalid_option;
  std::string_view rest = uri.substr(scheme.size());
  redis_options options;

  std::string_view authority = rest;
  std::string_view db_text;
  bool has_db = false;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    db_text = rest.substr(slash + 1);
    has_db = true;
  }
  if (authority.find('@') != std::string_view::npos) return open_errc::invalid_option;  // no credentials yet

  std::string_view host = authority;
  std::string_view port_text;
  bool has_port = false;
  if (authority.starts_with('[')) {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return open_errc::invalid_option;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return open_errc::invalid_option;
      port_text = after.substr(1);
      has_port = true;
    }
  } else if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
    has_port = true;
  }
  if (host.empty()) return open_errc::invalid_option;
  options.host = std::string(host);

  if (has_port) {
    unsigned port = 0;
    if (!parse_decimal(port_text, port) || port == 0 || port > std::numeric_limits<std::uint16_t>::max()) {
      return open_errc::invalid_option;
    }
    options.port = static_cast<std::uint16_t>(port);
  }
  if (has_db) {
    int db = 0;
    if (!parse_decimal(db_text, db)) return open_errc::invalid_option;
    options.db = db;
  }
  return options;
}

std::unique_ptr<redis_store> open_redis_store(const redis_options& /*options*/) {
  return nullptr;
}

}  // namespace otsync::store
