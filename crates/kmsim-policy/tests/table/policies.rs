//! The principals, keys and policy documents the table uses. Key policies follow the shapes of
//! the AWS KMS developer guide (default policy, key administrators and users, the grant
//! statement for AWS resources, the AWS managed key's kms:ViaService/kms:CallerAccount policy,
//! encryption-context and multi-Region conditions); identity policies are IAM's usual ones.

pub const ROOT: &str = "arn:aws:iam::111122223333:root";
pub const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
pub const BOB: &str = "arn:aws:iam::111122223333:user/bob";
pub const ADMIN: &str = "arn:aws:sts::111122223333:assumed-role/KMSAdminRole/admin-session";
pub const ADMIN_ROLE: &str = "arn:aws:iam::111122223333:role/KMSAdminRole";
pub const APP: &str = "arn:aws:sts::111122223333:assumed-role/AppRole/i-0abc";
pub const APP_ROLE: &str = "arn:aws:iam::111122223333:role/AppRole";
pub const CAROL: &str = "arn:aws:iam::444455556666:user/carol";
pub const DAVE: &str = "arn:aws:iam::444455556666:user/dave";
pub const OTHER_ROOT: &str = "arn:aws:iam::444455556666:root";
pub const MALLORY: &str = "arn:aws:iam::999988887777:user/mallory";
/// A service principal (the table's caller syntax `service:<name>`).
pub const LOGS: &str = "service:logs.us-east-1.amazonaws.com";

pub const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
pub const MRK: &str = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
pub const MRK_EU: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
pub const OTHER_KEY: &str =
    "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";

pub const K_DEFAULT: &str = r#"{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : { "AWS" : "arn:aws:iam::111122223333:root" },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"#;

pub const K_GUIDE: &str = r#"{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/KMSAdminRole"},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"],
     "Resource": "*"},
    {"Sid": "Allow use of the key", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:role/AppRole", "arn:aws:iam::111122223333:user/bob"]},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
     "Resource": "*"},
    {"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/AppRole"},
     "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}
  ]
}"#;

/// The guide's policy without the statement that delegates to IAM.
pub const K_GUIDE_NO_ROOT: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/KMSAdminRole"},
     "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:Get*", "kms:ScheduleKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Allow use of the key", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:role/AppRole", "arn:aws:iam::111122223333:user/bob"]},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
     "Resource": "*"}
  ]
}"#;

/// The shape of an AWS managed key's policy (aws/ebs): everyone in the account, through EC2.
pub const K_MANAGED: &str = r#"{
  "Version": "2012-10-17",
  "Id": "auto-ebs-2",
  "Statement": [
    {"Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
     "Effect": "Allow", "Principal": {"AWS": "*"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                "kms:CreateGrant", "kms:DescribeKey"],
     "Resource": "*",
     "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333",
                                    "kms:ViaService": "ec2.us-east-1.amazonaws.com"}}},
    {"Sid": "Allow direct access to key metadata to the account", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"], "Resource": "*"}
  ]
}"#;

pub const K_EC: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:DescribeKey", "Resource": "*"},
    {"Sid": "DecryptWithDepartment", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:Department": "IT"}}},
    {"Sid": "EncryptWithKnownKeysOnly", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Encrypt", "Resource": "*",
     "Condition": {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Project", "Department"]},
                   "Null": {"kms:EncryptionContextKeys": "false"}}},
    {"Sid": "GenerateWithAppName", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:GenerateDataKey", "Resource": "*",
     "Condition": {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}},
    {"Sid": "RequireContext", "Effect": "Deny", "Principal": "*",
     "Action": "kms:GenerateDataKeyWithoutPlaintext", "Resource": "*",
     "Condition": {"Null": {"kms:EncryptionContextKeys": "true"}}},
    {"Sid": "AllowWithoutPlaintext", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": "kms:GenerateDataKeyWithoutPlaintext", "Resource": "*"},
    {"Sid": "StageAnyCase", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEqualsIgnoreCase": {"kms:EncryptionContext:stage": "PROD"}}},
    {"Sid": "LogGroupsOnly", "Effect": "Allow",
     "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
     "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*", "kms:Describe*"], "Resource": "*",
     "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:*"}}}
  ]
}"#;

pub const K_MRK: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "ReplicateToEurope", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/AppRole"}, "Action": "kms:ReplicateKey", "Resource": "*",
     "Condition": {"StringLike": {"kms:ReplicaRegion": ["eu-*"]}}},
    {"Sid": "PromoteUsWest", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:role/AppRole"}, "Action": "kms:UpdatePrimaryRegion",
     "Resource": "*", "Condition": {"StringEquals": {"kms:PrimaryRegion": "us-west-2"}}},
    {"Sid": "MultiRegionOnly", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"Bool": {"kms:MultiRegion": "true"}}},
    {"Sid": "PrimaryOnly", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "kms:Encrypt", "Resource": "*",
     "Condition": {"StringEquals": {"kms:MultiRegionKeyType": "PRIMARY"}}}
  ]
}"#;

pub const K_CROSS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "AllowExternalAccount", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
    {"Sid": "AllowCarol", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::444455556666:user/carol"}, "Action": "kms:GenerateDataKey",
     "Resource": "*"}
  ]
}"#;

pub const K_CALLER_ACCOUNT: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AnyoneInTwoAccounts", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt",
     "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": ["111122223333", "444455556666"]}}},
    {"Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey", "Resource": "*"}
  ]
}"#;

pub const K_NOTPRINCIPAL: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "OnlyAdminsManage", "Effect": "Deny",
     "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:role/KMSAdminRole",
                              "arn:aws:sts::111122223333:assumed-role/KMSAdminRole/admin-session",
                              "111122223333"]},
     "Action": ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"], "Resource": "*"}
  ]
}"#;

pub const K_SECURE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "111122223333"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
  ]
}"#;

pub const K_ONLY_OWN_ACCOUNT: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "AllowExternalDecrypt", "Effect": "Allow",
     "Principal": {"AWS": "444455556666"}, "Action": "kms:Decrypt", "Resource": "*"},
    {"Sid": "DenyOtherOrgs", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*",
     "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ["111122223333", "444455556666"]}}}
  ]
}"#;

pub const K_OWNER_TAG_2008: &str = r#"{
  "Version": "2008-10-17",
  "Statement": [
    {"Sid": "OwnerLiteral", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEquals": {"aws:ResourceTag/Owner": "${aws:username}"}}}
  ]
}"#;

pub const K_DEGENERATE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "NoAction", "Effect": "Allow", "Principal": "*", "Resource": "*"},
    {"Sid": "NoResource", "Effect": "Allow", "Principal": "*", "Action": "kms:*"},
    {"Sid": "NonMrkOnly", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
     "Action": "kms:Decrypt", "NotResource": "arn:aws:kms:*:*:key/mrk-*"},
    {"Sid": "NotActionForBob", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"},
     "NotAction": ["kms:Put*", "kms:ScheduleKeyDeletion"], "Resource": "*"}
  ]
}"#;

pub const K_IFEXISTS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "DirectOrThroughS3", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}},
    {"Sid": "NotThroughLambda", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Encrypt", "Resource": "*",
     "Condition": {"StringNotLike": {"kms:ViaService": "lambda.*.amazonaws.com"}}},
    {"Sid": "TagsIfAny", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:TagResource", "Resource": "*",
     "Condition": {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "Project"}}}
  ]
}"#;

pub const I_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllKms","Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;
pub const I_DECRYPT_KEY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"DecryptOneKey","Effect":"Allow","Action":"kms:decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}]}"#;
pub const I_MRK_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllMrks","Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"arn:aws:kms:*:111122223333:key/mrk-*"}]}"#;
pub const I_DENY_DELETE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"AllKms","Effect":"Allow","Action":"kms:*","Resource":"*"},
  {"Sid":"NoDeletion","Effect":"Deny","Action":["kms:ScheduleKeyDeletion","kms:Delete*"],"Resource":"*"}]}"#;
pub const I_REGION: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"PinnedRegions","Effect":"Allow","Action":"kms:*","Resource":"*",
  "Condition":{"StringEquals":{"aws:RequestedRegion":["us-east-1","eu-west-1"]}}}]}"#;
pub const I_IP: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"FromOffice","Effect":"Allow","Action":"kms:*","Resource":"*",
  "Condition":{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234::/48"]}}}]}"#;
pub const I_NOT_IP: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"AllKms","Effect":"Allow","Action":"kms:*","Resource":"*"},
  {"Sid":"DenyOutsideOffice","Effect":"Deny","Action":"kms:*","Resource":"*",
   "Condition":{"NotIpAddress":{"aws:SourceIp":["203.0.113.0/24","198.51.100.7"]}}}]}"#;
pub const I_DATE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Window","Effect":"Allow","Action":"kms:*","Resource":"*",
  "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}"#;
pub const I_EPOCH: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"EpochWindow","Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
  "Condition":{"DateLessThanEquals":{"aws:CurrentTime":"1893456000"}}}]}"#;
pub const I_NOTACTION: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllButDangerous","Effect":"Allow",
  "NotAction":["kms:ScheduleKeyDeletion","kms:Delete*","kms:PutKeyPolicy"],"Resource":"*"}]}"#;
pub const I_NOTRESOURCE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"AllKms","Effect":"Allow","Action":"kms:*","Resource":"*"},
  {"Sid":"DecryptOnlyMrks","Effect":"Deny","Action":"kms:Decrypt","NotResource":"arn:aws:kms:*:111122223333:key/mrk-*"}]}"#;
pub const I_TAGVAR: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"OwnKeys","Effect":"Allow","Action":"kms:*","Resource":"*",
  "Condition":{"StringEquals":{"aws:ResourceTag/Owner":"${aws:username}"}}}]}"#;
pub const I_TEAMTAG: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"TeamKeys","Effect":"Allow","Action":"kms:*","Resource":"*",
  "Condition":{"StringEquals":{"aws:ResourceTag/Team":"${aws:PrincipalTag/Team}"}}}]}"#;
pub const I_RESOURCE_VAR: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"TaggedKey","Effect":"Allow","Action":"kms:Decrypt",
  "Resource":"arn:aws:kms:us-east-1:111122223333:key/${aws:PrincipalTag/KeyId}"}]}"#;
pub const I_LITERAL_STAR: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"LiteralStar","Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
  "Condition":{"StringLike":{"kms:EncryptionContext:path":"reports/${*}/${?}"}}}]}"#;
pub const I_TAGKEYS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"OnlyKnownTags","Effect":"Allow","Action":"kms:TagResource","Resource":"*",
   "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["Project","Owner"]}}},
  {"Sid":"DropTempTags","Effect":"Allow","Action":"kms:UntagResource","Resource":"*",
   "Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":"tmp-*"}}},
  {"Sid":"KeepOwnerTag","Effect":"Deny","Action":"kms:UntagResource","Resource":"*",
   "Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"Owner"}}}]}"#;
pub const I_IFEXISTS: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"S3OrDirect","Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
  "Condition":{"StringEqualsIfExists":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}]}"#;
pub const I_NULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NeedContext","Effect":"Allow","Action":"kms:Encrypt","Resource":"*",
  "Condition":{"Null":{"kms:EncryptionContextKeys":"false"}}}]}"#;
pub const I_SECURE: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"AllKms","Effect":"Allow","Action":"kms:*","Resource":"*"},
  {"Sid":"TlsOnly","Effect":"Deny","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
pub const I_NUMERIC: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"LongWindow","Effect":"Allow","Action":"kms:ScheduleKeyDeletion","Resource":"*",
  "Condition":{"NumericGreaterThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":20}}}]}"#;
pub const I_CAROL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"UseOtherAccountKey","Effect":"Allow",
  "Action":["kms:Decrypt","kms:Encrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*"}]}"#;
pub const I_CAROL_NO_ENCRYPT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoEncrypt","Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}]}"#;
pub const I_GRANTS: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Sid":"GrantToRoles","Effect":"Allow","Action":"kms:CreateGrant","Resource":"*",
   "Condition":{"ArnLike":{"kms:GranteePrincipal":"arn:aws:iam::111122223333:role/*"}}},
  {"Sid":"NoUntrustedRetirer","Effect":"Deny","Action":"kms:CreateGrant","Resource":"*",
   "Condition":{"ArnEquals":{"kms:RetiringPrincipal":"arn:aws:iam::111122223333:role/Untrusted"}}},
  {"Sid":"OnlyDecryptGrants","Effect":"Deny","Action":"kms:CreateGrant","Resource":"*",
   "Condition":{"ForAnyValue:StringNotEquals":{"kms:GrantOperations":["Decrypt","RetireGrant"]}}}]}"#;
