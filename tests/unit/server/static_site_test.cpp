// The editor page's file table (src/server/static_site.hpp): which names a request may ask for, which
// files a directory contributes, and the bounds.
#include "server/static_site.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/process.hpp"

namespace otsync::server {
namespace {

namespace fs = std::filesystem;

class StaticSiteTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("otsync-static"); }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const fs::path& path, const std::string& content) { std::ofstream(path, std::ios::binary) << content; }
  fs::path dir_;
};

TEST(StaticSiteNames, OnlyPlainNames) {
  for (const char* ok : {"index.html", "editor.js", "editor.css", "a", "a-b_c.1.map", "LEGAL.txt"}) {
    EXPECT_TRUE(static_site::safe_name(ok)) << ok;
  }
  for (const char* bad : {"", ".", "..", ".hidden", "../x", "..\\x", "a/b", "a\\b", "a b", "%2e%2e", "x%00",
                          "\xc0\xae\xc0\xae", "caf\xc3\xa9.js", "a:b", "a?b", "a#b"}) {
    EXPECT_FALSE(static_site::safe_name(bad)) << bad;
  }
  EXPECT_FALSE(static_site::safe_name(std::string("a\0b", 3)));
  EXPECT_FALSE(static_site::safe_name(std::string(129, 'a')));
  EXPECT_TRUE(static_site::safe_name(std::string(128, 'a')));
}

TEST(StaticSiteNames, ContentTypes) {
  EXPECT_EQ(static_site::content_type("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(static_site::content_type("editor.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(static_site::content_type("editor.css"), "text/css; charset=utf-8");
  EXPECT_EQ(static_site::content_type("editor.js.map"), "application/json");
  EXPECT_EQ(static_site::content_type("logo.svg"), "image/svg+xml");
  EXPECT_EQ(static_site::content_type("blob"), "application/octet-stream");
  EXPECT_EQ(static_site::content_type(".js"), "application/octet-stream");
}

TEST_F(StaticSiteTest, ReadsPlainFilesOnly) {
  write(dir_ / "index.html", "<html>");
  write(dir_ / "editor.js", "js");
  write(dir_ / ".env", "SECRET");
  fs::create_directory(dir_ / "sub");
  write(dir_ / "sub" / "inner.js", "inner");
  write(dir_.parent_path() / (dir_.filename().string() + "-outside"), "OUTSIDE");
  fs::create_symlink(dir_.parent_path() / (dir_.filename().string() + "-outside"), dir_ / "link.js");
  fs::create_directory_symlink(dir_ / "sub", dir_ / "dirlink");
  std::string error;
  auto site = static_site::load(dir_.string(), error);
  fs::remove(dir_.parent_path() / (dir_.filename().string() + "-outside"));
  ASSERT_TRUE(site) << error;
  EXPECT_EQ(site->size(), 2U);
  ASSERT_NE(site->find("index.html"), nullptr);
  EXPECT_EQ(site->find("index.html")->content, "<html>");
  EXPECT_EQ(site->find("index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(site->find("editor.js")->content, "js");
  for (const char* missing : {".env", "sub", "inner.js", "sub/inner.js", "link.js", "dirlink", "../index.html", ""}) {
    EXPECT_EQ(site->find(missing), nullptr) << missing;
  }
}

TEST_F(StaticSiteTest, RefusesWhatIsNotASite) {
  std::string error;
  EXPECT_FALSE(static_site::load((dir_ / "missing").string(), error));
  EXPECT_NE(error.find("not a directory"), std::string::npos) << error;
  write(dir_ / "editor.js", "js");
  error.clear();
  EXPECT_FALSE(static_site::load(dir_.string(), error));
  EXPECT_NE(error.find("index.html"), std::string::npos) << error;
  write(dir_ / "index.html", "<html>");
  write(dir_ / "big.js", std::string(static_site::max_file_bytes + 1, 'x'));
  error.clear();
  EXPECT_FALSE(static_site::load(dir_.string(), error));
  EXPECT_NE(error.find("larger than"), std::string::npos) << error;
  fs::remove(dir_ / "big.js");
  for (std::size_t i = 0; i < static_site::max_files; ++i) write(dir_ / ("f" + std::to_string(i)), "");
  error.clear();
  EXPECT_FALSE(static_site::load(dir_.string(), error));
  EXPECT_NE(error.find("more than"), std::string::npos) << error;
}

}  // namespace
}  // namespace otsync::server
