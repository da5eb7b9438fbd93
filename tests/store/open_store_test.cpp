#include "otsync/store/open.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "otsync/store/redis_store.hpp"
#include "otsync/store/sqlite_store.hpp"
#include "redis_server.hpp"
#include "store_calls.hpp"
#include "temp_dir.hpp"

namespace otsync::store::test {
namespace {

namespace fs = std::filesystem;

TEST(OpenStore, MemoryScheme) {
  auto s = open_store("memory:", "/nonexistent");
  ASSERT_TRUE(s);
  EXPECT_EQ(dynamic_cast<sqlite_store*>(s->get()), nullptr);
  doc_history doc{{"c", "d"}};
  EXPECT_FALSE(doc.append(**s, oplog::create_body{text_type, ""}));
}

TEST(OpenStore, SqliteWithoutAPathUsesTheDataDirectory) {
  temp_dir dir;
  const fs::path data_dir = dir.path() / "data" / "nested";
  auto s = open_store("sqlite:", data_dir.string());
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_NE(dynamic_cast<sqlite_store*>(s->get()), nullptr);
  EXPECT_TRUE(fs::exists(data_dir / "otsync.db"));
}

TEST(OpenStore, SqliteRelativePathIsUnderTheDataDirectory) {
  temp_dir dir;
  auto s = open_store("sqlite:sub/dir/my.db", dir.path().string());
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(fs::exists(dir.path() / "sub" / "dir" / "my.db"));
}

TEST(OpenStore, SqliteAbsolutePathIgnoresTheDataDirectory) {
  temp_dir dir;
  const fs::path path = dir.path() / "abs" / "x.db";
  auto s = open_store("sqlite:" + path.string(), "/nonexistent-data-dir");
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(fs::exists(path));
}

TEST(OpenStore, ADirectoryThatCannotBeCreatedIsAClearError) {
  temp_dir dir;
  std::ofstream(dir.path() / "file") << "x";
  std::string detail;
  auto s = open_store("sqlite:file/sub/x.db", dir.path().string(), &detail);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), open_errc::cannot_open);
  EXPECT_NE(detail.find("cannot create directory"), std::string::npos) << detail;
}

TEST(OpenStore, ASqliteCacheTooLargeForSqliteIsRefusedNotWrapped) {
  temp_dir dir;
  std::string detail;
  sqlite_tuning tuning;
  tuning.cache_mib = (std::size_t{1} << 54) + 1;  // in KiB: 2^64 + 1024, which would wrap to 1 MiB
  auto s = open_store("sqlite:sub/x.db", dir.path().string(), &detail, tuning);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), open_errc::invalid_option);
  EXPECT_NE(detail.find("too large"), std::string::npos) << detail;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "sub")) << "a refused option leaves nothing on disk";
  tuning.cache_mib = 64;
  EXPECT_TRUE(open_store("sqlite:x.db", dir.path().string(), &detail, tuning));
}

TEST(OpenStore, RedisUriOpensARedisStoreThatConnectsInTheBackground) {
  // Nothing listens on this port: opening still succeeds (the store keeps
  // trying), it is not connected, and calls fail with `unavailable`.
  const std::uint16_t closed_port = free_loopback_port();
  ASSERT_NE(closed_port, 0);
  auto s = open_store("redis://127.0.0.1:" + std::to_string(closed_port) + "/3", "/nonexistent");
  ASSERT_TRUE(s) << s.error().message();
  auto* redis = dynamic_cast<redis_store*>(s->get());
  ASSERT_NE(redis, nullptr);
  EXPECT_FALSE(redis->connected());
  EXPECT_EQ(load(**s, {"c", "d"}).error(), errc::unavailable);
}

TEST(OpenStore, AMalformedRedisUriIsAnInvalidOption) {
  for (const char* uri : {"redis://", "redis://host:port", "redis://host:70000", "redis://host:1/db"}) {
    std::string detail;
    auto s = open_store(uri, "/tmp", &detail);
    ASSERT_FALSE(s) << uri;
    EXPECT_EQ(s.error(), open_errc::invalid_option) << uri;
    EXPECT_NE(detail.find(uri), std::string::npos) << detail;
  }
}

TEST(OpenStore, UnknownSchemesAreRefused) {
  for (const char* uri : {"", "postgres://x", "memory", "sqlite", "MEMORY:", "file:x.db"}) {
    std::string detail;
    auto s = open_store(uri, "/tmp", &detail);
    ASSERT_FALSE(s) << uri;
    EXPECT_EQ(s.error(), open_errc::unknown_scheme) << uri;
    EXPECT_NE(s.error().message().find("memory:"), std::string::npos);
    EXPECT_NE(s.error().message().find("redis://"), std::string::npos);
  }
}

}  // namespace
}  // namespace otsync::store::test
