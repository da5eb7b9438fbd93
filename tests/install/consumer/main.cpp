// Uses the installed client library: an OT replica that takes a local edit,
// and connections (ws:// and wss://, the latter loading the system's trusted
// CAs through OpenSSL) to a port where nothing listens (never connect, close cleanly).
#include <otsync/client/connection.hpp>
#include <otsync/client/ot_client.hpp>
#include <otsync/ot/op.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <utility>

int main() {
  otsync::client::ot_client replica("consumer", 1, "hello");
  otsync::ot::op_builder builder;
  builder.skip(5).insert(", world");
  const otsync::ot::op edit = std::move(builder).finish();
  if (auto ec = replica.submit(edit)) {
    std::cerr << "submit failed: " << ec.message() << '\n';
    return 1;
  }
  if (replica.text().to_string() != "hello, world" || !replica.has_pending()) {
    std::cerr << "unexpected replica text: " << replica.text().to_string() << '\n';
    return 1;
  }
  std::uint64_t seq = 1;
  const auto out = replica.flush(seq);
  if (!out || out->seq != 1 || out->version != 1 || !replica.has_inflight()) {
    std::cerr << "flush did not put the edit in flight\n";
    return 1;
  }

  otsync::client::connection_options options;
  options.url = "ws://127.0.0.1:1/ws";  // nothing listens on port 1
  otsync::client::connection connection(options);
  if (connection.wait_connected(std::chrono::milliseconds(200))) {
    std::cerr << "connected to nowhere\n";
    return 1;
  }
  connection.close();

  options.url = "wss://127.0.0.1:1/ws";
  otsync::client::connection secure(options);
  if (secure.wait_connected(std::chrono::milliseconds(200))) {
    std::cerr << "connected to nowhere over TLS\n";
    return 1;
  }
  secure.close();
  std::cout << "otsync consumer: " << replica.text().to_string() << '\n';
  return 0;
}
