#include "otsync/auth/identity.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <vector>

namespace otsync::auth {
namespace {

const std::string secret_a(32, 'a');
const std::string secret_b(32, 'b');

TEST(Identity, MintedIdsVerifyUnderTheirSecretOnly) {
  identity_keys a(secret_a);
  identity_keys a_again(secret_a);  // another instance sharing the secret
  identity_keys b(secret_b);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = a.mint_id();
    EXPECT_EQ(id.size(), 44u);
    EXPECT_TRUE(a.is_minted(id));
    EXPECT_TRUE(a_again.is_minted(id));
    EXPECT_FALSE(b.is_minted(id));
    EXPECT_TRUE(seen.insert(id).second) << "ids repeat";
  }
}

TEST(Identity, MadeUpAndTamperedIdsAreRefused) {
  identity_keys keys(secret_a);
  auto id = keys.mint_id();
  for (std::size_t i = 0; i < id.size(); ++i) {
    auto tampered = id;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(keys.is_minted(tampered)) << "position " << i;
  }
  for (const std::string& made_up :
       std::vector<std::string>{"", "alice", "0123456789abcdef0123456789abcdef", std::string(44, 'A'), id.substr(0, 43),
                                id + "A", keys.alias(id)}) {
    EXPECT_FALSE(keys.is_minted(made_up)) << made_up;
  }
}

TEST(Identity, AliasesAreStablePerSecretAndRevealNothing) {
  identity_keys a(secret_a);
  identity_keys b(secret_b);
  auto id = a.mint_id();
  EXPECT_EQ(a.alias(id), identity_keys(secret_a).alias(id));
  EXPECT_NE(a.alias(id), b.alias(id));
  EXPECT_NE(a.alias(id), a.alias(a.mint_id()));
  EXPECT_EQ(a.alias(id).size(), 23u);
  EXPECT_EQ(a.alias(id)[0], '~');
  EXPECT_EQ(a.alias(id).find(id.substr(0, 8)), std::string::npos);
  EXPECT_EQ(a.alias(""), "");
  EXPECT_FALSE(a.is_minted(a.alias(id)));
}

TEST(Identity, ShortSecretsAreRefused) {
  EXPECT_THROW(identity_keys(std::string(15, 'x')), std::invalid_argument);
  EXPECT_NO_THROW(identity_keys(std::string(16, 'x')));
  EXPECT_GE(identity_keys::random_secret().size(), min_identity_secret_bytes);
  EXPECT_NE(identity_keys::random_secret(), identity_keys::random_secret());
}

TEST(Identity, Base64UrlMatchesRfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
}

}  // namespace
}  // namespace otsync::auth
