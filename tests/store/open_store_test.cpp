#include "otsync/store/open.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "otsync/store/sqlite_store.hpp"
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
  EXPECT_FALSE(doc.append(**s, doc::create_body{text_type, ""}));
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

TEST(OpenStore, RedisUrisOpenAStoreOrAreRefusedClearly) {
  // Opening does not wait for Redis: a store comes back even with nothing listening.
  auto s = open_store("redis://127.0.0.1:1/0", "/tmp");
  ASSERT_TRUE(s);
  for (const char* uri : {"redis://", "redis://h:0", "redis://h:99999", "redis://h:1/x", "redis://h:1/16"}) {
    std::string detail;
    auto bad = open_store(uri, "/tmp", &detail);
    ASSERT_FALSE(bad) << uri;
    EXPECT_EQ(bad.error(), open_errc::invalid_option) << uri;
    EXPECT_NE(detail.find("redis://HOST:PORT"), std::string::npos) << detail;
  }
}

TEST(OpenStore, UnknownSchemesAreRefused) {
  for (const char* uri : {"", "postgres://x", "memory", "sqlite", "MEMORY:", "file:x.db"}) {
    std::string detail;
    auto s = open_store(uri, "/tmp", &detail);
    ASSERT_FALSE(s) << uri;
    EXPECT_EQ(s.error(), open_errc::unknown_scheme) << uri;
    EXPECT_NE(s.error().message().find("memory:"), std::string::npos);
  }
}

}  // namespace
}  // namespace otsync::store::test
