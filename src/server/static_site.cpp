#include "static_site.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace otsync::server {
namespace fs = std::filesystem;

namespace {

bool name_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// Reads a regular file without following a symbolic link, at most `limit` bytes; false when it is
// not a regular file, is larger, or cannot be read.
bool read_bounded(const fs::path& path, std::size_t limit, std::string& out, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    error = path.string() + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (!ok) error = path.string() + ": not a regular file";
  if (ok && static_cast<std::size_t>(st.st_size) > limit) {
    error = path.string() + ": larger than " + std::to_string(limit) + " bytes";
    ok = false;
  }
  out.clear();
  std::array<char, 64 * 1024> buffer{};
  while (ok) {
    const auto n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = path.string() + ": " + std::strerror(errno);
      ok = false;
      break;
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > limit) {
      error = path.string() + ": larger than " + std::to_string(limit) + " bytes";
      ok = false;
      break;
    }
    out.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return ok;
}

}  // namespace

bool static_site::safe_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (char c : name) {
    if (!name_char(c)) return false;
  }
  return true;
}

std::string_view static_site::content_type(std::string_view name) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 14> types{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".webp", "image/webp"},
      {".woff2", "font/woff2"},
      {".woff", "font/woff"},
      {".wasm", "application/wasm"},
  }};
  for (const auto& [ext, type] : types) {
    if (name.size() > ext.size() && name.ends_with(ext)) return type;
  }
  return "application/octet-stream";
}

std::optional<static_site> static_site::load(const std::string& dir, std::string& error) {
  static_site site;
  std::error_code ec;
  site.dir_ = fs::absolute(dir, ec).lexically_normal().string();
  if (ec) site.dir_ = dir;
  if (!fs::is_directory(site.dir_, ec)) {
    error = site.dir_ + " is not a directory";
    return std::nullopt;
  }
  std::size_t total = 0;
  for (fs::directory_iterator it(site.dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    // Only plain files with plain names; anything else (subdirectories, links, dot files) is skipped.
    std::error_code status_ec;
    if (!safe_name(name) || !fs::is_regular_file(it->symlink_status(status_ec)) || status_ec) continue;
    if (site.files_.size() == max_files) {
      error = site.dir_ + " holds more than " + std::to_string(max_files) + " files";
      return std::nullopt;
    }
    file f;
    if (!read_bounded(it->path(), max_file_bytes, f.content, error)) return std::nullopt;
    total += f.content.size();
    if (total > max_total_bytes) {
      error = site.dir_ + " holds more than " + std::to_string(max_total_bytes) + " bytes";
      return std::nullopt;
    }
    f.content_type = std::string(content_type(name));
    site.files_.emplace(name, std::move(f));
  }
  if (ec) {
    error = site.dir_ + ": " + ec.message();
    return std::nullopt;
  }
  if (!site.find("index.html")) {
    error = site.dir_ + " has no index.html";
    return std::nullopt;
  }
  return site;
}

const static_site::file* static_site::find(std::string_view name) const {
  if (!safe_name(name)) return nullptr;
  auto it = files_.find(name);
  return it == files_.end() ? nullptr : &it->second;
}

std::string default_editor_dir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "editor";
  const auto bin = exe.parent_path();
  const std::array<fs::path, 2> candidates{bin / "editor",
                                           (bin / ".." / "share" / "otsync" / "editor").lexically_normal()};
  for (const auto& c : candidates) {
    if (fs::is_directory(c, ec)) return c.string();
  }
  return candidates[0].string();
}

}  // namespace otsync::server
