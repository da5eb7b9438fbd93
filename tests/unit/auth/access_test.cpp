#include "otsync/auth/access.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "otsync/auth/jwt.hpp"
#include "unit/auth/token_forge.hpp"

namespace otsync::auth {
namespace {

using forge::json;
using namespace std::chrono_literals;

access_rules rules(std::vector<std::string> read, std::vector<std::string> write = {}) {
  auto result = access_rules::from_patterns(read, write);
  if (auto* error = std::get_if<std::string>(&result)) throw std::runtime_error("refused: " + *error);
  return std::get<access_rules>(result);
}

std::string refusal(std::vector<std::string> read, std::vector<std::string> write = {}) {
  auto result = access_rules::from_patterns(read, write);
  auto* error = std::get_if<std::string>(&result);
  return error != nullptr ? *error : "";
}

// The obvious quadratic-space definition, to check the two-pointer matcher against.
bool reference_match(const std::string& glob, const std::string& text) {
  std::vector<std::vector<bool>> m(glob.size() + 1, std::vector<bool>(text.size() + 1, false));
  m[0][0] = true;
  for (std::size_t g = 1; g <= glob.size(); ++g) {
    for (std::size_t t = 0; t <= text.size(); ++t) {
      if (glob[g - 1] == '*') {
        m[g][t] = m[g - 1][t] || (t > 0 && m[g][t - 1]);
      } else {
        m[g][t] = t > 0 && m[g - 1][t - 1] && glob[g - 1] == text[t - 1];
      }
    }
  }
  return m[glob.size()][text.size()];
}

TEST(Glob, Cases) {
  struct example {
    const char* glob;
    const char* text;
    bool matches;
  };
  for (const auto& [glob, text, matches] : std::vector<example>{
           {"", "", true},
           {"", "a", false},
           {"a", "", false},
           {"*", "", true},
           {"*", "anything/with/slashes", true},
           {"**", "x", true},
           {"abc", "abc", true},
           {"abc", "abcd", false},
           {"abc", "ab", false},
           {"a*b*c", "abc", true},
           {"a*b*c", "aXbYc", true},
           {"a*b*c", "abcbc", true},
           {"a*b*c", "acb", false},
           {"a*b*c", "ab", false},
           {"a*b*c", "abcx", false},
           {"a**b", "ab", true},
           {"*a", "ba", true},
           {"*a", "ab", false},
           {"a*", "a", true},
           {"team-*", "team-", true},
           {"team-*", "team", false},
           {"team-*", "xteam-1", false},
           {"*ab*ab*", "abab", true},
           {"*ab*ab*", "aabba", false},
           {"*aab", "aaab", true},
           {"*.md", "docs/readme.md", true},
           {"*?", "a", false},  // `?` is an ordinary character
           {"?", "?", true},
       }) {
    EXPECT_EQ(glob_matches(glob, text), matches) << glob << " ~ " << text;
  }
}

TEST(Glob, AgreesWithTheReferenceOnRandomInputs) {
  std::mt19937 random(12345);
  auto make = [&](const char* alphabet, std::size_t max_length) {
    std::string out(random() % (max_length + 1), ' ');
    auto size = std::char_traits<char>::length(alphabet);
    for (auto& c : out) c = alphabet[random() % size];
    return out;
  };
  for (int i = 0; i < 20000; ++i) {
    auto glob = make("ab*", 8);
    auto text = make("ab", 10);
    ASSERT_EQ(glob_matches(glob, text), reference_match(glob, text)) << glob << " ~ " << text;
  }
}

TEST(Glob, ManyStarsAgainstLongTextsFinish) {
  // Patterns of the largest size against long ids: no exponential backtracking.
  std::string stars;
  for (int i = 0; i < 256; ++i) stars += "*a";
  ASSERT_EQ(stars.size(), 512u);
  std::string as(4096, 'a');
  EXPECT_TRUE(glob_matches(stars, as));
  EXPECT_FALSE(glob_matches(stars, as.substr(0, 4095) + "b"));
  EXPECT_FALSE(glob_matches(stars, std::string(255, 'a')));
  std::string worst = "*" + std::string(510, 'a') + "b";  // the quadratic case for one star
  EXPECT_FALSE(glob_matches(worst, as));
  // A whole rule set of them.
  std::vector<std::string> patterns(max_access_patterns, "n/" + stars.substr(0, 510));
  auto heavy = rules(patterns, patterns);
  EXPECT_TRUE(heavy.may_read("n", as));
  EXPECT_FALSE(heavy.may_write("n", std::string(4095, 'b') + "a"));
  EXPECT_FALSE(heavy.may_write("m", as));
}

TEST(Access, DefaultGrantsNothingAndAllowAllEverything) {
  access_rules none;
  EXPECT_FALSE(none.may_read("notes", "a"));
  EXPECT_FALSE(none.may_read("", ""));
  EXPECT_FALSE(none.may_write("notes", "a"));
  auto all = access_rules::allow_all();
  for (auto [collection, id] : std::vector<std::pair<std::string, std::string>>{
           {"notes", "a"}, {"", ""}, {"x", "a/b/c"}, {"*", "*"}, {std::string(1000, 'c'), std::string(5000, 'd')}}) {
    EXPECT_TRUE(all.may_read(collection, id));
    EXPECT_TRUE(all.may_write(collection, id));
  }
}

TEST(Access, PatternsAndWriteImpliesRead) {
  auto r = rules({"notes/*", "wiki/readme"}, {"notes/team-*", "drafts/*"});
  EXPECT_TRUE(r.may_read("notes", "anything"));
  EXPECT_TRUE(r.may_read("notes", ""));
  EXPECT_FALSE(r.may_write("notes", "anything"));
  EXPECT_TRUE(r.may_write("notes", "team-"));
  EXPECT_TRUE(r.may_write("notes", "team-a"));
  EXPECT_FALSE(r.may_write("notes", "xteam-a"));
  EXPECT_TRUE(r.may_read("wiki", "readme"));
  EXPECT_FALSE(r.may_read("wiki", "readme2"));
  EXPECT_FALSE(r.may_read("wiki", "Readme"));
  EXPECT_FALSE(r.may_write("wiki", "readme"));
  EXPECT_TRUE(r.may_read("drafts", "x")) << "write implies read";
  EXPECT_TRUE(r.may_write("drafts", "x"));
  EXPECT_FALSE(r.may_read("notesx", "a"));
  EXPECT_FALSE(r.may_read("note", "a"));
  EXPECT_FALSE(r.may_read("", "notes/a"));
}

TEST(Access, EverythingPatterns) {
  for (const auto& everything : {std::string("*"), std::string("*/*"), std::string("**/**")}) {
    auto r = rules({}, {everything});
    EXPECT_TRUE(r.may_write("any", "doc"));
    EXPECT_TRUE(r.may_write("", ""));
    EXPECT_TRUE(r.may_write("c", "a/b"));
  }
  auto any_collection = rules({"*/readme"});
  EXPECT_TRUE(any_collection.may_read("a", "readme"));
  EXPECT_TRUE(any_collection.may_read("b", "readme"));
  EXPECT_FALSE(any_collection.may_read("b", "x/readme")) << "the collection part stops at the first '/'";
}

TEST(Access, DocIdsWithSlashes) {
  auto r = rules({"notes/*", "wiki/team/*", "a/b/c"});
  EXPECT_TRUE(r.may_read("notes", "a/b/c"));
  EXPECT_TRUE(r.may_read("wiki", "team/x"));
  EXPECT_TRUE(r.may_read("wiki", "team/x/y"));
  EXPECT_FALSE(r.may_read("wiki", "team"));
  EXPECT_FALSE(r.may_read("wiki/team", "x")) << "collection 'wiki', id 'team/*'";
  EXPECT_TRUE(r.may_read("a", "b/c"));
  EXPECT_FALSE(r.may_read("a/b", "c"));
  auto wild = rules({"n*s/x*/y"});
  EXPECT_TRUE(wild.may_read("notes", "x/y"));
  EXPECT_TRUE(wild.may_read("notes", "xa/b/y"));
  EXPECT_FALSE(wild.may_read("notes", "y/x/y"));
  // A star matches '/' in a collection name too; only the pattern is split at its first '/'.
  EXPECT_TRUE(wild.may_read("no/tes", "x/y"));
}

TEST(Access, BoundsAndShapes) {
  std::vector<std::string> many(max_access_patterns, "n/*");
  EXPECT_EQ(refusal(many), "");
  EXPECT_EQ(refusal({}, many), "");
  many.push_back("n/*");
  EXPECT_NE(refusal(many).find("257"), std::string::npos);
  EXPECT_NE(refusal({}, many).find("write"), std::string::npos);

  std::string longest = "n/" + std::string(max_access_pattern_bytes - 2, 'x');
  EXPECT_EQ(refusal({longest}), "");
  EXPECT_NE(refusal({longest + "x"}).find("513"), std::string::npos);
  EXPECT_NE(refusal({"n/*", ""}).find("read[1]"), std::string::npos);
  EXPECT_NE(refusal({}, {"notes"}).find("write[0]"), std::string::npos);
  EXPECT_NE(refusal({"n*"}), "");
  EXPECT_NE(refusal({"**"}), "") << "only a bare '*' means everything";
  // Messages name the pattern's place, never its text.
  EXPECT_EQ(refusal({"VERYSECRETNAME"}).find("VERYSECRETNAME"), std::string::npos);
}

// The claim as tokens carry it, through the verifier.
class AccessClaim : public ::testing::Test {
 protected:
  const std::string secret = std::string(32, 'k');
  const std::chrono::system_clock::time_point now = std::chrono::system_clock::time_point(1'700'000'000s);

  std::variant<verified_token, token_error> verify(const json& payload) const {
    jwt_settings settings;
    settings.hs256_secret = secret;
    auto verifier = jwt_verifier::create(settings);
    return std::get<jwt_verifier>(verifier).verify(forge::hs256_token(payload, secret), now);
  }
  access_rules granted(const json& claim) const {
    auto result = verify({{"sub", "u"}, {"otsync", claim}});
    if (auto* error = std::get_if<token_error>(&result)) throw std::runtime_error("refused: " + error->message);
    return std::get<verified_token>(result).access;
  }
  token_errc refused(const json& claim) const {
    auto result = verify({{"sub", "u"}, {"otsync", claim}});
    if (!std::holds_alternative<token_error>(result)) return token_errc{};
    return std::get<token_error>(result).kind;
  }
};

TEST_F(AccessClaim, Grants) {
  auto r = granted({{"read", {"notes/*"}}, {"write", {"notes/mine"}}});
  EXPECT_TRUE(r.may_read("notes", "a"));
  EXPECT_TRUE(r.may_write("notes", "mine"));
  EXPECT_FALSE(r.may_write("notes", "a"));
  auto write_only = granted({{"write", {"drafts/*"}}});
  EXPECT_TRUE(write_only.may_read("drafts", "d"));
  auto empty = granted(json::object());
  EXPECT_FALSE(empty.may_read("notes", "a"));
  // Unknown members are ignored (a later version may add some).
  EXPECT_TRUE(granted({{"read", {"*"}}, {"admin", true}}).may_read("x", "y"));
}

TEST_F(AccessClaim, MissingClaimGrantsNothing) {
  auto result = verify({{"sub", "u"}});
  ASSERT_TRUE(std::holds_alternative<verified_token>(result));
  const auto& access = std::get<verified_token>(result).access;
  EXPECT_FALSE(access.may_read("notes", "a"));
  EXPECT_FALSE(access.may_read("", ""));
  EXPECT_FALSE(access.may_write("notes", "a"));
}

TEST_F(AccessClaim, WrongShapesAreBadClaims) {
  for (const json& claim : std::vector<json>{
           json(nullptr),
           json("notes/*"),
           json::array({"notes/*"}),
           json(true),
           {{"read", "notes/*"}},
           {{"read", {{"notes", "*"}}}},
           {{"read", {"notes/*", 5}}},
           {{"write", {nullptr}}},
           {{"write", {json::array({"notes/*"})}}},
           {{"read", {"notes"}}},
           {{"read", {""}}},
           {{"write", {std::string(max_access_pattern_bytes + 1, '*')}}},
       }) {
    EXPECT_EQ(refused(claim), token_errc::bad_claims) << claim.dump();
  }
  json many = json::array();
  for (std::size_t i = 0; i <= max_access_patterns; ++i) many.push_back("n/" + std::to_string(i));
  EXPECT_EQ(refused({{"read", many}}), token_errc::bad_claims);
  many.erase(many.size() - 1);
  EXPECT_TRUE(granted({{"read", many}}).may_read("n", "255"));
}

}  // namespace
}  // namespace otsync::auth
