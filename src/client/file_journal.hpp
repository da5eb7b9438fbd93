// The offline queue on disk: one JSON file per document and one for the
// connection's identity, each replaced atomically (write a temp file, fsync,
// rename, fsync the directory), so a crash leaves the old or the new state,
// never half of one.
//
// Thread safety: none; the connection calls it under its lock.
#pragma once

#include <filesystem>

#include "replica_journal.hpp"

namespace otsync::client {

class file_journal final : public replica_journal {
 public:
  /// Creates `dir` when missing; throws std::runtime_error when it cannot.
  /// `sync` false skips the fsyncs (faster, but a power cut may lose the last edits).
  explicit file_journal(std::filesystem::path dir, bool sync = true);

  std::optional<client_identity> load_identity() override;
  void save_identity(const client_identity& identity) override;
  std::optional<replica_state> load(const std::string& collection, const std::string& id) override;
  void save(const std::string& collection, const std::string& id, const replica_state& state) override;

  /// The file holding one document's replica.
  [[nodiscard]] std::filesystem::path path_of(const std::string& collection, const std::string& id) const;

 private:
  void replace(const std::filesystem::path& path, const std::string& contents);

  std::filesystem::path dir_;
  bool sync_;
};

}  // namespace otsync::client
