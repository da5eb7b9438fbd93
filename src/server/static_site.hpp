// The editor page's files (clients/editor/dist), served by otsyncd at / and /editor/NAME.
//
// The directory is read once, at startup: only regular files directly in it (no subdirectories,
// no symbolic links, no names outside [A-Za-z0-9._-] or starting with '.'), each at most
// max_file_bytes and all together at most max_total_bytes. A request can only name one of the
// files read then (a map lookup), so no request path ever reaches the file system: `..`,
// percent-encoded dots or slashes, backslashes and NUL bytes name nothing. Rebuilding the editor
// takes a restart of otsyncd.
//
// Thread safety: immutable after load(); shared by every session.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace otsync::server {

class static_site {
 public:
  static constexpr std::size_t max_file_bytes = 16U << 20U;
  static constexpr std::size_t max_total_bytes = 64U << 20U;
  static constexpr std::size_t max_files = 256;

  struct file {
    std::string content;
    std::string content_type;
  };

  /// Reads the files of `dir`; nullopt with `error` set when it is missing, unreadable, holds no
  /// index.html, or is over the bounds.
  static std::optional<static_site> load(const std::string& dir, std::string& error);

  /// True for a name a request may ask for: 1 to 128 bytes of [A-Za-z0-9._-], not starting with '.'.
  static bool safe_name(std::string_view name) noexcept;

  /// The Content-Type of a file by its extension (application/octet-stream when unknown).
  static std::string_view content_type(std::string_view name) noexcept;

  /// The file called `name`, or nullptr.
  const file* find(std::string_view name) const;

  const std::string& dir() const noexcept { return dir_; }
  std::size_t size() const noexcept { return files_.size(); }

 private:
  std::string dir_;
  std::map<std::string, file, std::less<>> files_;
};

/// Where the editor's files are when --editor-dir is not given: the first of
/// `<directory of the binary>/editor` (the build tree: CMake copies clients/editor/dist there) and
/// `<directory of the binary>/../share/otsync/editor` (cmake --install) that exists; else the first.
std::string default_editor_dir();

}  // namespace otsync::server
