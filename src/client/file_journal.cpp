#include "file_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "otsync/protocol/json_parse.hpp"
#include "otsync/protocol/op_json.hpp"

namespace otsync::client {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int format_version = 1;

/// File names from arbitrary collection and document names: hex keeps them
/// portable and unambiguous.
std::string hex(std::string_view text) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() * 2);
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::runtime_error failure(const fs::path& path, const std::string& what) {
  return std::runtime_error("offline queue " + path.string() + ": " + what);
}

std::optional<json> read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path)) return std::nullopt;
    throw failure(path, "cannot be opened");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  json value = protocol::parse_json_bounded(buffer.str());
  if (!value.is_object() || value.value("format", 0) != format_version) throw failure(path, "not a saved replica");
  return value;
}

std::optional<ot::op> op_field(const json& value, const char* key, const fs::path& path) {
  auto it = value.find(key);
  if (it == value.end() || it->is_null()) return std::nullopt;
  auto parsed = protocol::op_from_json(*it);
  if (!parsed) throw failure(path, std::string(key) + " is not a valid op: " + parsed.error().message());
  return std::move(*parsed);
}

void sync_fd(int fd, const fs::path& path) {
  if (::fsync(fd) != 0) throw failure(path, std::string("fsync: ") + std::strerror(errno));
}

}  // namespace

file_journal::file_journal(fs::path dir, bool sync) : dir_(std::move(dir)), sync_(sync) {
  std::error_code ec;
  fs::create_directories(dir_ / "docs", ec);
  if (ec) throw failure(dir_, "cannot create the directory: " + ec.message());
}

fs::path file_journal::path_of(const std::string& collection, const std::string& id) const {
  return dir_ / "docs" / (hex(collection) + "." + hex(id) + ".json");
}

void file_journal::replace(const fs::path& path, const std::string& contents) {
  fs::path temp = path;
  temp += ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw failure(temp, std::string("open: ") + std::strerror(errno));
  std::size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = std::strerror(errno);
      ::close(fd);
      throw failure(temp, "write: " + why);
    }
    written += static_cast<std::size_t>(n);
  }
  if (sync_) {
    try {
      sync_fd(fd, temp);
    } catch (...) {
      ::close(fd);
      throw;
    }
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) throw failure(path, std::string("rename: ") + std::strerror(errno));
  if (sync_) {
    int dir_fd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) throw failure(path.parent_path(), std::string("open: ") + std::strerror(errno));
    try {
      sync_fd(dir_fd, path.parent_path());
    } catch (...) {
      ::close(dir_fd);
      throw;
    }
    ::close(dir_fd);
  }
}

std::optional<client_identity> file_journal::load_identity() {
  fs::path path = dir_ / "identity.json";
  auto value = read_json(path);
  if (!value) return std::nullopt;
  auto src = value->find("src");
  auto next = value->find("next_seq");
  if (src == value->end() || !src->is_string() || next == value->end() || !next->is_number_unsigned())
    throw failure(path, "missing src or next_seq");
  return client_identity{src->get<std::string>(), next->get<std::uint64_t>()};
}

void file_journal::save_identity(const client_identity& identity) {
  json value = {{"format", format_version}, {"src", identity.src}, {"next_seq", identity.next_seq}};
  replace(dir_ / "identity.json", value.dump());
}

std::optional<replica_state> file_journal::load(const std::string& collection, const std::string& id) {
  fs::path path = path_of(collection, id);
  auto value = read_json(path);
  if (!value) return std::nullopt;
  try {
    if (value->at("collection").get<std::string>() != collection || value->at("id").get<std::string>() != id)
      throw failure(path, "saved for another document");
    replica_state state;
    state.src = value->at("src").get<std::string>();
    state.version = value->at("version").get<std::uint64_t>();
    state.text = value->at("text").get<std::string>();
    state.inflight = op_field(*value, "inflight", path);
    state.inflight_seq = value->value("inflight_seq", std::uint64_t{0});
    state.pending = op_field(*value, "pending", path);
    if (state.inflight && state.inflight_seq == 0) throw failure(path, "an op in flight without its seq");
    return state;
  } catch (const json::exception& e) {
    throw failure(path, e.what());
  }
}

void file_journal::save(const std::string& collection, const std::string& id, const replica_state& state) {
  json value = {{"format", format_version},
                {"collection", collection},
                {"id", id},
                {"src", state.src},
                {"version", state.version},
                {"text", state.text},
                {"inflight", state.inflight ? protocol::op_to_json(*state.inflight) : json(nullptr)},
                {"inflight_seq", state.inflight_seq},
                {"pending", state.pending ? protocol::op_to_json(*state.pending) : json(nullptr)}};
  replace(path_of(collection, id), value.dump());
}

}  // namespace otsync::client
