// The smallest useful program on the native client: connect, open (or
// create) a document, type each line read from stdin at the end of the text,
// and print every change other clients make. At end of input it waits until
// the server has acknowledged everything, prints the final text as JSON and
// exits 0 (1 if it could not synchronise within --wait seconds).
// With --cursor it also shows its caret (at the end of what it typed) to the
// other clients and prints theirs: when they join, move or leave, and where
// they are on its text after every remote change.
//
//   otsync-example-editor --url ws://127.0.0.1:8080/ws --doc notes [--cursor]
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "otsync/client/connection.hpp"
#include "otsync/ot/unicode.hpp"
#include "otsync/protocol/op_json.hpp"

int main(int argc, char** argv) {
  std::string url;
  std::string collection = "docs";
  std::string doc_id = "example";
  std::string offline_dir;
  double wait_seconds = 10;
  bool cursor = false;
  CLI::App app("Types stdin lines into a shared document and prints remote changes.");
  app.add_option("--url", url, "server WebSocket URL, e.g. ws://127.0.0.1:8080/ws")->required();
  app.add_option("--collection", collection, "collection name");
  app.add_option("--doc", doc_id, "document id (created empty when missing)");
  app.add_option("--offline-dir", offline_dir, "keep unsent edits here across restarts");
  app.add_option("--wait", wait_seconds, "seconds to wait for the server at the end");
  app.add_flag("--cursor", cursor, "show our caret to the others and print theirs (presence)");
  CLI11_PARSE(app, argc, argv);

  std::mutex print_mutex;  // callbacks run on the connection's thread
  otsync::client::connection_options options;
  options.url = url;
  options.offline_dir = offline_dir;
  options.on_error = [&](const otsync::client::client_error& e) {
    std::lock_guard lock(print_mutex);
    std::cerr << "error " << e.code << ": " << e.message << "\n";
  };
  std::unique_ptr<otsync::client::connection> connection;
  try {
    connection = std::make_unique<otsync::client::connection>(options);
  } catch (const std::exception& e) {  // a bad URL or an unusable offline directory
    std::cerr << e.what() << "\n";
    return 1;
  }
  auto& conn = *connection;
  auto doc = conn.open(collection, doc_id, std::string());
  doc->on_change([&](const otsync::client::change& c) {
    if (c.kind != otsync::client::change_kind::edit) return;
    std::lock_guard lock(print_mutex);
    std::cout << "remote " << c.src << " v" << c.version << ": " << otsync::protocol::op_to_json(c.op).dump()
              << std::endl;
    if (!cursor) return;
    // Remote cursors follow the text: where they are now.
    for (const auto& p : doc->remote_presences()) {
      if (p.selection)
        std::cout << "cursor " << p.id << " " << p.selection->anchor << "," << p.selection->focus << std::endl;
    }
  });
  if (cursor) {
    doc->on_presence([&](const otsync::client::presence_change& c) {
      static constexpr const char* kinds[] = {"joined", "updated", "left"};
      std::lock_guard lock(print_mutex);
      std::cout << "presence " << kinds[static_cast<int>(c.kind)] << " " << c.presence.src << " " << c.presence.id;
      if (c.presence.selection) std::cout << " " << c.presence.selection->anchor << "," << c.presence.selection->focus;
      std::cout << std::endl;
    });
    std::lock_guard lock(print_mutex);
    std::cout << "presence id " << doc->presence_id() << std::endl;
  }
  const auto wait = std::chrono::milliseconds(static_cast<long>(wait_seconds * 1000));
  if (!doc->wait_loaded(wait)) {
    std::cerr << "could not load " << collection << "/" << doc_id << " from " << url << "\n";
    return 1;
  }
  {
    std::lock_guard lock(print_mutex);
    std::cout << "loaded v" << doc->version() << ": " << nlohmann::json(doc->text()).dump() << std::endl;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    // Wait for the create to be acknowledged before the first edit.
    if (!doc->exists() && !doc->wait_synchronised(wait)) break;
    line += "\n";
    auto end = otsync::ot::unicode::count_code_points(doc->text());
    if (auto error = doc->insert(end, line)) {
      std::cerr << "edit rejected: " << error.message() << "\n";
      return 1;
    }
    if (cursor) {
      // The caret after what we typed (others' edits meanwhile may have moved the end).
      auto caret = doc->selection();
      auto at = end + otsync::ot::unicode::count_code_points(line);
      if (!caret || caret->focus != at) (void)doc->set_selection(otsync::ot::selection{at, at});
    }
  }
  bool synced = doc->wait_synchronised(wait);
  std::lock_guard lock(print_mutex);
  std::cout << "text: " << nlohmann::json(doc->text()).dump() << std::endl;
  std::cout << "version: " << doc->version() << (synced ? "" : " (not synchronised)") << std::endl;
  return synced ? 0 : 1;
}
