//! Test vectors made by independent implementations (openssl 3.0 and Python `cryptography` 48)
//! while this crate was written, embedded as base64 (decode with [`b64`]).
//!
//! Keys were generated once with `openssl genpkey`; the commands are given per constant. Nothing
//! here is a real secret.

use base64::Engine;

use crate::{AsymmetricSpec as Spec, PrivateKey};

/// Decodes a base64 constant, ignoring the line breaks.
pub(crate) fn b64(text: &str) -> Vec<u8> {
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .expect("test vectors are valid base64")
}

/// (spec, PKCS#8 DER, SPKI DER) of the openssl-generated test keys.
pub(crate) fn openssl_keys() -> Vec<(Spec, Vec<u8>, Vec<u8>)> {
    [
        (Spec::Rsa2048, RSA_2048_PKCS8, RSA_2048_SPKI),
        (Spec::Rsa3072, RSA_3072_PKCS8, RSA_3072_SPKI),
        (Spec::Rsa4096, RSA_4096_PKCS8, RSA_4096_SPKI),
        (Spec::EccNistP256, P256_PKCS8, P256_SPKI),
        (Spec::EccNistP384, P384_PKCS8, P384_SPKI),
        (Spec::EccNistP521, P521_PKCS8, P521_SPKI),
        (Spec::EccSecgP256k1, K256_PKCS8, K256_SPKI),
    ]
    .into_iter()
    .map(|(spec, private, public)| (spec, b64(private), b64(public)))
    .collect()
}

/// The openssl-generated test key of `spec`, parsed.
pub(crate) fn openssl_key(spec: Spec) -> PrivateKey {
    let (_, der, _) = openssl_keys()
        .into_iter()
        .find(|(s, _, _)| *s == spec)
        .expect("a test key for every spec");
    PrivateKey::from_pkcs8_der(spec, &der).expect("openssl key parses")
}

/// The message of every signature vector.
pub(crate) const MESSAGE: &[u8] = b"kmsim independent test vector";

/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out k.pem`, then
/// `openssl pkcs8 -topk8 -nocrypt -in k.pem -outform DER`.
pub(crate) const RSA_2048_PKCS8: &str = "
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDVl1AaJqtWCBty+oYETC/LRZ/aDaIVocfF6CPg0tqP1YWX
+Q1sWGyT+lBaanstWXR+ErIfsjZyXcFk2kbSiJ8XKXsi8tah3yKto6qPTbCrwgbcvIwtXiia6Q7v3IYvfEPQIQ+2rdTGHV00
A9nU0zb3/8onKB8U7/2KB4LhVNkAF/h2rQXSGPKwwA6BGYj4M511dTn6tc//PhhVPsjCjBfeEJL5dB5lQp1yd2aeU8eM4K6w
RR+4LykhhTlTPd+JPBTLSNJBciByI90Lli7CKPNDKCxOolVnZfQqGiGL/vUF2o4OexEbsHeJwCtrsmVEtW5YUsy2fvpOoWhn
YosVp2lFAgMBAAECggEABhIEpjAFKWIvmlP004U9/0v3E0gIT3V6nqBOkyKXympQheIyxHdUfQ9dkaqtd4hJH3z08DutAN3m
ejEavcin2A1HJ6LsZxgjyl8r0/wERZozfobvtCmVHXOUOuYmL8FOka+IdjISKWzgnwxtxRB/sAqzOlIRZOBXpCc65aAqTq6F
ngfsn4qpdXxV0Gyf6EeTtXvc9sGZNiRn5Jmdqz1vOuoNIrebBRlMKIF1YyWM+2eBIMjkEeuBZ5T3WAEEI2L/NgBVVU6METFh
V9mCdVF+TpQDCm6cz3H9Wl+tATv4NeBjJFR3S/dSfvzf6YWJWs2cWhYK+tL974h2uq5PgTzG3QKBgQD0vPP5ETHyrXJWIWNW
lFgQtW0m2XYQIOa6qjlle1+we4S2uXOzSRFh9MfQHYaBYOE1E2pWszhLaKZoPuA8mPlD7tVOTR5HdXCdP3SDHd4Phf5ohNOP
xLamaOnOvP02jhFQFfcwowVjdk2wHZk3LJxKyTVEFrCNX41HG6kzArpGjwKBgQDfa3GZkVzz8+Ik52Ovle4UH1Z+I8h7Q/a2
Lhk5mQwfbV2XJfpoNaFnqhrc0WEIy9vjBMkvYonUa0ZEGGl98EwigImZAUqBTqMDJ1vEKFqN9xCjQ2/SMJSHu5rKCdXr2FNs
jC6anmhF3rNsUwoiJRrgeVFXIsPnKGtswlvUjH8c6wKBgQCg6rhz1JWF3ftmnG9nlwRMgC3ztFpHgoqSw6gXjMY/EQgS6N8l
S+7M/JiAw1kUKnIJZumtdguWsYlw05622VJUE25XHKfDDnnsOrPOHk5K4KyFZoiAaDQ8OJE66NKJE2JYyQiOBzJc0oWEPgHm
4EMnfSKz0UNmwSPwVEStEKcQCwKBgQC56qb1q8k2GFSvcP27N4COriVDgnNqX/wFTgcfrwQvgsrG5Iuj/Dz8Dsmbx4B/2WR5
XZotHEqlwT8Pm2Dts/EnJN9bu39MayurjC0I5qu0R0xJD+0Vc+elq6/7QIQLZlDFm0GM2RTcT53vHoroLwhWk53kbMGosjHy
pynTjbaZUQKBgQDYXgF+8jw7M9kVYw2ua7QxqGVWGgNJjvUX8nidAUEMFjhIyveK4Tg3lFdD8JJHtPYBoNpFgZPblI8WHf+U
RMeitFtPt9peh+nMfFomhGzg8eL76BqaZxPm4D2gH14Qgwh4w8CtjUZph1a3Yix7TpYIrYTswCL7x/ooufq5l2Ht5A==";

/// `openssl pkey -in k.pem -pubout -outform DER` of [`RSA_2048_PKCS8`].
pub(crate) const RSA_2048_SPKI: &str = "
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1ZdQGiarVggbcvqGBEwvy0Wf2g2iFaHHxegj4NLaj9WFl/kNbFhs
k/pQWmp7LVl0fhKyH7I2cl3BZNpG0oifFyl7IvLWod8iraOqj02wq8IG3LyMLV4omukO79yGL3xD0CEPtq3Uxh1dNAPZ1NM2
9//KJygfFO/9igeC4VTZABf4dq0F0hjysMAOgRmI+DOddXU5+rXP/z4YVT7IwowX3hCS+XQeZUKdcndmnlPHjOCusEUfuC8p
IYU5Uz3fiTwUy0jSQXIgciPdC5YuwijzQygsTqJVZ2X0Khohi/71BdqODnsRG7B3icAra7JlRLVuWFLMtn76TqFoZ2KLFadp
RQIDAQAB";

/// [`RSA_2048_PKCS8`]'s key as `openssl rsa -traditional -outform DER` writes it (PKCS#1).
pub(crate) const RSA_2048_PKCS1: &str = "
MIIEpQIBAAKCAQEA1ZdQGiarVggbcvqGBEwvy0Wf2g2iFaHHxegj4NLaj9WFl/kNbFhsk/pQWmp7LVl0fhKyH7I2cl3BZNpG
0oifFyl7IvLWod8iraOqj02wq8IG3LyMLV4omukO79yGL3xD0CEPtq3Uxh1dNAPZ1NM29//KJygfFO/9igeC4VTZABf4dq0F
0hjysMAOgRmI+DOddXU5+rXP/z4YVT7IwowX3hCS+XQeZUKdcndmnlPHjOCusEUfuC8pIYU5Uz3fiTwUy0jSQXIgciPdC5Yu
wijzQygsTqJVZ2X0Khohi/71BdqODnsRG7B3icAra7JlRLVuWFLMtn76TqFoZ2KLFadpRQIDAQABAoIBAAYSBKYwBSliL5pT
9NOFPf9L9xNICE91ep6gTpMil8pqUIXiMsR3VH0PXZGqrXeISR989PA7rQDd5noxGr3Ip9gNRyei7GcYI8pfK9P8BEWaM36G
77QplR1zlDrmJi/BTpGviHYyEils4J8MbcUQf7AKszpSEWTgV6QnOuWgKk6uhZ4H7J+KqXV8VdBsn+hHk7V73PbBmTYkZ+SZ
nas9bzrqDSK3mwUZTCiBdWMljPtngSDI5BHrgWeU91gBBCNi/zYAVVVOjBExYVfZgnVRfk6UAwpunM9x/VpfrQE7+DXgYyRU
d0v3Un783+mFiVrNnFoWCvrS/e+IdrquT4E8xt0CgYEA9Lzz+REx8q1yViFjVpRYELVtJtl2ECDmuqo5ZXtfsHuEtrlzs0kR
YfTH0B2GgWDhNRNqVrM4S2imaD7gPJj5Q+7VTk0eR3VwnT90gx3eD4X+aITTj8S2pmjpzrz9No4RUBX3MKMFY3ZNsB2ZNyyc
Ssk1RBawjV+NRxupMwK6Ro8CgYEA32txmZFc8/PiJOdjr5XuFB9WfiPIe0P2ti4ZOZkMH21dlyX6aDWhZ6oa3NFhCMvb4wTJ
L2KJ1GtGRBhpffBMIoCJmQFKgU6jAydbxChajfcQo0Nv0jCUh7uaygnV69hTbIwump5oRd6zbFMKIiUa4HlRVyLD5yhrbMJb
1Ix/HOsCgYEAoOq4c9SVhd37ZpxvZ5cETIAt87RaR4KKksOoF4zGPxEIEujfJUvuzPyYgMNZFCpyCWbprXYLlrGJcNOettlS
VBNuVxynww557Dqzzh5OSuCshWaIgGg0PDiROujSiRNiWMkIjgcyXNKFhD4B5uBDJ30is9FDZsEj8FRErRCnEAsCgYEAueqm
9avJNhhUr3D9uzeAjq4lQ4Jzal/8BU4HH68EL4LKxuSLo/w8/A7Jm8eAf9lkeV2aLRxKpcE/D5tg7bPxJyTfW7t/TGsrq4wt
COartEdMSQ/tFXPnpauv+0CEC2ZQxZtBjNkU3E+d7x6K6C8IVpOd5GzBqLIx8qcp0422mVECgYEA2F4BfvI8OzPZFWMNrmu0
MahlVhoDSY71F/J4nQFBDBY4SMr3iuE4N5RXQ/CSR7T2AaDaRYGT25SPFh3/lETHorRbT7faXofpzHxaJoRs4PHi++gammcT
5uA9oB9eEIMIeMPArY1GaYdWt2Ise06WCK2E7MAi+8f6KLn6uZdh7eQ=";

/// As [`RSA_2048_PKCS8`] with `rsa_keygen_bits:3072`.
pub(crate) const RSA_3072_PKCS8: &str = "
MIIG/wIBADANBgkqhkiG9w0BAQEFAASCBukwggblAgEAAoIBgQC1LRbFUcbh/trv2vqW0ScDhul6SQLA5DNmtUsg99wfntFy
58d5fo8MT2aHYbVgEdCXN0rwYLXTnjlqDkekHnBrYg62ja2UkK5j98tp1TY/mdeWKfxy9A8ICCwGddG/O6UhXYo12pF6Iun6
/ah6gw0rOrCL8XDZ4rPsuNEsma09noMdIXndYa9EqtPVk3lHPNmCM/X9DhomKWP9/AgWpu842gTm+FQuvyqeLKtwG2pwdr8U
YqJLkq+KtHJH+lhfQPsLJVdCCXSCNgFFPTq2YbeWyGvlzKAP54p1ZagzeK6tI79XII2FNOM8Zpt449tuLAbJT3M7Xc2K/EBf
ec1cZwDUZQbITmF5V6Nr7lxlhcJWDvZCqni+eDAowznzA44Mnyc0RXZP7c1/nXrLzE+rsGkDINiJp7wFPl9B9eDIBefN54Od
4eVSLf3MR8tO3klLAeeZWoQ9jHzeUWZ/0lh8kT3+jTkXpC0u+BdjpsguSE43m02yy/uV7uPXWxhxgdpu3lECAwEAAQKCAYBW
SP8LQoMhpqrGiNfHdBzMhTg00QjKrOP+CmGZdfIT7SN7Qf+yUR/3kOkXmOU0t8dL/T1ndeeivTxC0kI0W3rW6YBwWNFObAlh
+uWZpb2MVMxj6+MbLDjsblfpS7t1BAcE+POV6l5WeMJOkvfmQPvIls72FyrT2jAukWatgxMKwa9X9FWBpcA/R8xTb0TXNJey
duS0fD7f5d6FW77OavqLbOngxmvxR4IYitWrMqNipGskXkVFELshqAa1WPk1hFA+M3a2ZN8xv3ai0U3vUny1VlfKPUDZm2ap
XGuyfpbNlH/3v5UIehcDgnMY6aCR0P3xRPoQrFaY2JlOlW5q7Y3HePG/lw22v8vfsMpJsqoJ3WCv89bfLDleMlhJ1jtw5YCZ
BFOIuYZ6rG5FQpzcFWpOc3KHOfZSzX8PCzr/hcj2l2c5yekf2dec54rSV0s+QeAvRpo8l6pGQoq+GFpw0QJqjLmLDhA2b8OF
w2wM1SjF2z25jpnBBYf/Nk5xJADZ0zECgcEA3BaiLBmuirUd8cejutLQUB5zJmRj9lclJwwd96/35PRAO3d64lRultCRALpY
b07+AnNM3rwYXSkCmBZYDOlvCP0OYc3aLV4jST8MDhN7K4JBBUv5i195U1Svq5UeT27BqfS6ZG+XinrTk6gSnI2GorXiddl0
plZeobcoz37frVaFVncnhHYq7cUwTgr058jQ2yW6/hEY7RwxuwkwklosQEBCVO7BXkXPskSxuDcidvRfLEKqT+iTb0L4AYEo
0oWPAoHBANK9CoCQ0HGgHjKNsolAhm22j4cqdwg9SodP0fXibLuxAmc4gKP/22NVv7SWnlyl/A/EmWfVDt23AkWkxUKpsLlW
5nM5lk7ZbPrZwEL/0Du2hGC7Ue7MRHIPHUoqpReAXrp4Q1eegBGnhHY9WhrUfJMoQTfj87y0nCnrw3a7ptDffNeQxlG2cz6U
IIx4qx5yz4pYy/pGSKFYwvxWQh5qv39h1Dc2dep7zYldvgJPl1Zz6zz6ekDx/2XYK6mPfX8uHwKBwQCKPCESB/NsJcQwF0+M
SVsT53w10fpDQIsSUncEGl9eS9eIQkxJmfR3/3oD9gcTqo66ZUcT4xp+cQKzGd2mBnx6Lc95uLzfn/AT0mi08qF7O22xcP3E
/2uJ3ngUEi4egBdds1vbN4f8L5dyd69w6yd0TT92++VbkIYRlqQoZ60AB4bqPx7wAPSHsUHc0t7uMmCUNMeVSpHYY8wMiQIb
+k0u8e13wRptJvYEJ0dkyCR6iJS6jQjB9fece3igIUrNp5sCgcEAoCDwx/xBxvUJvRQaY1xaSSd9LBHCXMplxSeLvLCOOpgn
4VL3vKX/iB1yC8CfGHsvarPSdSlZoHMdENpA4YSbOlmjxk4tvkBMJNgs1TwYeCcZs37ipPcl0x1U/jQlOhRa5onXcc6INeH6
LvYzb0uiVRczZ0qYu/zo5Jm27pNsEC6haBMj/pcKPrTDfrl6HSrUNKWAaO3a5m7RyneoygAG/r3RSRriwofMB+LpLExaDGEM
kEsrdgnsLPDzTGYxz9+1AoHBAM1P2w9sLffJAXImWyBckekZDeek+TWggBVH2eXpjqY5GkWwmTWfi0JPcatsLvt+o95+CxzO
q1+o5WdqwAahArSVivPBNNV6rctKcXX1A7Vx2GMJb4hotHn+uxp8VPoYgf8kND2UEJxbu24vtj6FP90/15qBj8rCuiFYX7L8
Lk1IGt8Q14lcgHA9PGG3pL5lIanM4NbXwk41dD2I6G53yOlp58uqdhhBl3aGnGUTpzyM3XaPZ6FWxqr59ux1VMRELA==";

/// `openssl pkey -pubout -outform DER` of [`RSA_3072_PKCS8`].
pub(crate) const RSA_3072_SPKI: &str = "
MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAtS0WxVHG4f7a79r6ltEnA4bpekkCwOQzZrVLIPfcH57RcufHeX6P
DE9mh2G1YBHQlzdK8GC10545ag5HpB5wa2IOto2tlJCuY/fLadU2P5nXlin8cvQPCAgsBnXRvzulIV2KNdqReiLp+v2oeoMN
Kzqwi/Fw2eKz7LjRLJmtPZ6DHSF53WGvRKrT1ZN5RzzZgjP1/Q4aJilj/fwIFqbvONoE5vhULr8qniyrcBtqcHa/FGKiS5Kv
irRyR/pYX0D7CyVXQgl0gjYBRT06tmG3lshr5cygD+eKdWWoM3iurSO/VyCNhTTjPGabeOPbbiwGyU9zO13NivxAX3nNXGcA
1GUGyE5heVeja+5cZYXCVg72Qqp4vngwKMM58wOODJ8nNEV2T+3Nf516y8xPq7BpAyDYiae8BT5fQfXgyAXnzeeDneHlUi39
zEfLTt5JSwHnmVqEPYx83lFmf9JYfJE9/o05F6QtLvgXY6bILkhON5tNssv7le7j11sYcYHabt5RAgMBAAE=";

/// As [`RSA_2048_PKCS8`] with `rsa_keygen_bits:4096`; the import wrapping key of the import vectors.
pub(crate) const RSA_4096_PKCS8: &str = "
MIIJQwIBADANBgkqhkiG9w0BAQEFAASCCS0wggkpAgEAAoICAQCyMql98ZklbAdGUnHSkSAinKrnYClK5+2zRHzVc98N3nZH
xp73x8QRFOHdbXbKTRZjne/B691mR9fki5C9OFF9SGPqo2G56LOJnMUuLW4q1HezSQN2WyfLjIY6dPvNyfFdLeW5dGgzdq0K
YNG8L/zwuBvb1DzELBoJB31sqWckxRoKlnr4oGC/gPrNdVFLIc6garvotuzvRzmVKzE8OQuC2LOZVR6CJO4z0bPEU9vo6Jy2
R6BC1vc/fK9YhQUckkYqE785hBJTb6h8mTSJaTuFH78mEUhMHDnlzHyIUWwQbP4QJ8VQSjXEpNbCaUNcbV7sh6hgimtY8UKY
QipYQNeOpg6rNFZMa8n/tNHbm9EGN1P6sm8duwsM2J/kct47pcHd6VBti5dN3XGsqbSDl/cWXzxOU/AinKvu1CitconrZ6ly
9lJ1STn6aHov4I03dfkozVYUDDIliPdZfiychYVK3zEWC27Rb82xP5hkmU2q+uwHr07ZRQaPvQXsXFWK5WiZZzzMYfcXsMrO
sHud6oc9fzYssAnW+gycnGDqqYltARJXrbJmhhLwSmJZU4mJDpPoOdRIZcCan6gfRqmaDVgK+yCeC31hxtwBKyyV3bUVDxop
mb17gcKRqSu/xkiKS2kZiXCQ1oHX3AHuTxg2t0TpyTLsgl0q+FNK4NoeUiVCPwIDAQABAoICAChRvzjga+rkNQcry1Y+APvj
3+WHRACPVqCru+UeGReNwMx/u+NLf2jwBSTxSiH+7DRw/Vku0YL9eXNcQs0Vi5ahxP3HpuqGJO1bm9/VZqppNYZK3G4wtOHg
81QRuRG4ghS3uFVMafFPBlslSf9fCke7GI6WSIOIiQGHANGPyOcwc7J2lu9fdlSOTfEj/NdXmGWCkO7YSObhAj3mrna2X4zl
FEn60PLYgU8XQSoIYWcjDqZNsYy+D+Z9Az2vp1buH9MQccGFSRI43vIGRjVbKpz18G2gFnAmKNF+gaTka2OSDbBBF2uRxvWt
6GvHnnawxnwVO7tQRnay7AMAYY1jaoIbFC4LsorNPS/jff7JFaP5SM0S6k2ZRXtsyxQZcINB0zZizh/fWmlya+575+1g5mYm
9Gm6HXa8p0L7bepNa1eqBMkqCiFS1ewkr4W41m4aDVBDw5MaaFKjjcxK+NY8E/g17l/N9lvFoWiRHsHYXztti1/bKIw/PMX7
vT47hvrKr9niUyNPU6KLTSdj2WvKi4kGxkesupg1nARWMbGDk6KWQJk6/1xGzaM4guNsfo8YqghAI6cbTBFQf7M/hNq5nVGO
adXMDrCmMUUr7K33irSGcZePyxCnq3113sXUWNLQLYMlGwvTyi6AKvfZ+xdkFVA6a9WhSuiikcQzTNNWnugFAoIBAQDZeopD
b+PRFFDNxNpTG+coaqVUdmrpZVW96tBgLYw+IgaGVsaJFWpyxjSxizMvuvcGrM9GpPkbHN+k24Dyfo5ocfcuY4BIrqL5Na0i
HjBcZB6nG7G3/eAz0HTBExpc1OAaGwZzPBdIUf8LJNDpCGRm1f2NHLaKfhCOeta0aBXZ5TXyTHAumu2issBAwHGwqKj86kyv
c5jsZbtbmP0FE49DMRnMsw1rf/yg6AhdDt9m3w1VhSCZoEot/C076ZXCsp/3KaD7xlJrYYk3YYNviZlACGgadjkPMHEYJYgC
/xL+dUiazuT/bKFBNCPp4HoiXtRqmp1U21bSmOsxF7/bp4SzAoIBAQDRwvSMcpe9LXWBTp7yU/4lR+rCAGOwF97S+9h6KQv4
A0dVxtLuD9QFH+79lXW3v4+4XcOZLlEDSiFX365jndsfMwJL/5N4LhBxZ88E1XlCP8aRXx2cE2HLZzRqjtcKBBl+D3ZERCJI
VWR0qwwCFWfrUO3R6Tj6IjQXct9LoVoMvIxuE3kRFUwttayDwr2ZPTQBlmwMUmDjf262B32uLXDOt70+JxgD995P/NnTWxFk
FLlLA8SJ31bLyi3gGyh6QnmMPY9x9NX5QYaC3O77wg0IEInkQyJkjMXqVflrl3HqCEtbr2xYh1Cmbob4tJwYp4w2EQb8ZhzN
s0g/3KJEsopFAoIBAQC0AP0XvDCwCUSoS9r5FwtJJJwbQLhU3g8N1qEKOijt9HO6FXDWXedxgCR1H2YKh5GW8MnPCxU0H73s
UdJ049MzF8EjoC+5+PHjm03mA1672hKU9hMu2u8Lc+pvNESJuZiTgvLfxkjvDw8uRha0CsIva8clWTKthpJlm77CK7SKWXFB
T4s6x/kQxSrjbWWsdq0ISVWXkvJsF/fvZL1nyjy1vJpCF6Fv7MtI00S44Wp/VvdOZZYKEeXUEfnOsRPHxtkoVkhsnEXzoxNT
x15mn1k86rhfzqKDs/Cnr8jX0hAClUi2+bAIyfzeXy2qkqYEdMEUS00Vw0YloXRpeeLPB+SJAoIBAEdW57cQjhzP5iPZKmO+
PzRMtkHOwhi0tZrJ/oDljuWFr/AzU6+VgIVRrAVgnI2mv+lzMj/ZqcHVp2tsbrIAkPKWdZSFUpFQEVWQea7qL3hhmlX8pGRd
jygPbJtFA0urw0PFXHKxPXueVzD6r3XR8+rrNkbq6+7eTRsgfWMKeEbWpWgWhVlTBfqRzB9vzu3cC+DyWMMEDWGyCGQuPgdL
+w7DHMCTqS5IUbqggzDHyy1fgvlJScGeTLW4iEus0OJr00zn7u5R16gTKf09yKWlBKuWfF8+mebancEqBk8aTarLsV14Vv/w
3XQNKShSvLgB28TTm62hyPAIpmzZy/JTSoUCggEBAK0knfA+O4vBWSwqT08kVyuDOCDvZYPxqE59ymmkKH0KQV3Y/4eligyy
FSw5mvr9tjrYr/JIfZbr/Xm5RpFGnbqNZMHWDTFO3WMjkXXJpSiomVLbe0Hienr6/zI8OlyeizmRJCSBJp1g3/pONi2vVht1
ax0zd/EEbeeiJpNz7VERjR16FQKW4quna3O9N0uVi2xCro5CFr+ByOQQ3LS0zkIhtytyd87DS66wVj6Cpvh3ulbFAy3TqNEK
iGtFoz+/uMTx8YYgYQZR8D9rPAHyKwordUt4mApUhgw7l+kY0HSXRkhJE8fFcx2eNvjHNcl4IOnBq3mD4mTtGjN39LyIiEs=";

/// `openssl pkey -pubout -outform DER` of [`RSA_4096_PKCS8`].
pub(crate) const RSA_4096_SPKI: &str = "
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAsjKpffGZJWwHRlJx0pEgIpyq52ApSufts0R81XPfDd52R8ae98fE
ERTh3W12yk0WY53vwevdZkfX5IuQvThRfUhj6qNhueiziZzFLi1uKtR3s0kDdlsny4yGOnT7zcnxXS3luXRoM3atCmDRvC/8
8Lgb29Q8xCwaCQd9bKlnJMUaCpZ6+KBgv4D6zXVRSyHOoGq76Lbs70c5lSsxPDkLgtizmVUegiTuM9GzxFPb6OictkegQtb3
P3yvWIUFHJJGKhO/OYQSU2+ofJk0iWk7hR+/JhFITBw55cx8iFFsEGz+ECfFUEo1xKTWwmlDXG1e7IeoYIprWPFCmEIqWEDX
jqYOqzRWTGvJ/7TR25vRBjdT+rJvHbsLDNif5HLeO6XB3elQbYuXTd1xrKm0g5f3Fl88TlPwIpyr7tQorXKJ62epcvZSdUk5
+mh6L+CNN3X5KM1WFAwyJYj3WX4snIWFSt8xFgtu0W/NsT+YZJlNqvrsB69O2UUGj70F7FxViuVomWc8zGH3F7DKzrB7neqH
PX82LLAJ1voMnJxg6qmJbQESV62yZoYS8EpiWVOJiQ6T6DnUSGXAmp+oH0apmg1YCvsgngt9YcbcASssld21FQ8aKZm9e4HC
kakrv8ZIiktpGYlwkNaB19wB7k8YNrdE6cky7IJdKvhTSuDaHlIlQj8CAwEAAQ==";

/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`, then `openssl pkcs8 -topk8
/// -nocrypt -outform DER` (SEC1 inside, with the public key, without repeating the curve).
pub(crate) const P256_PKCS8: &str = "
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHwhvPnOlsuN5p3/wJneXUFxhHNlrZpuQVNQ/iob7CAShRANC
AATBO63zF/HIo2NsWmwyp0tqwYmEII0w8tjQQcz01m5a64qRxPQqMidPl7LAaY9IT40AuPrx76GysIoyjoGXkPSa";

/// `openssl pkey -pubout -outform DER` of [`P256_PKCS8`].
pub(crate) const P256_SPKI: &str = "
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwTut8xfxyKNjbFpsMqdLasGJhCCNMPLY0EHM9NZuWuuKkcT0KjInT5eywGmP
SE+NALj68e+hsrCKMo6Bl5D0mg==";

/// [`P256_PKCS8`]'s key as `openssl pkey -outform DER` writes it: a bare SEC1 `ECPrivateKey` with
/// the curve.
pub(crate) const P256_SEC1: &str = "
MHcCAQEEIB8Ibz5zpbLjead/8CZ3l1BcYRzZa2abkFTUP4qG+wgEoAoGCCqGSM49AwEHoUQDQgAEwTut8xfxyKNjbFpsMqdL
asGJhCCNMPLY0EHM9NZuWuuKkcT0KjInT5eywGmPSE+NALj68e+hsrCKMo6Bl5D0mg==";

/// As [`P256_PKCS8`] with `ec_paramgen_curve:P-384`.
pub(crate) const P384_PKCS8: &str = "
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAZDX6jS7/9YbCOb+/IYsIxz9gc76RE2CM2gXyUblnyHbEH+KlL
r/GNABjVPqPNvDWhZANiAASwXnKkibo+mwz/BA4ThNe9rit7c6/69zcuApZiPMetwb6dKofQWxqD+Tkubwrjol8tovO+yqOS
gQhQceUO8julCfUUuawH48DMmwrOxG1IaeDxdvtTh0YrjzYSt/UxGKc=";

/// `openssl pkey -pubout -outform DER` of [`P384_PKCS8`].
pub(crate) const P384_SPKI: &str = "
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEsF5ypIm6PpsM/wQOE4TXva4re3Ov+vc3LgKWYjzHrcG+nSqH0Fsag/k5Lm8K46Jf
LaLzvsqjkoEIUHHlDvI7pQn1FLmsB+PAzJsKzsRtSGng8Xb7U4dGK482Erf1MRin";

/// As [`P256_PKCS8`] with `ec_paramgen_curve:P-521`.
pub(crate) const P521_PKCS8: &str = "
MIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIB7BHgS3dGm5LXIQzuTaj0oOMGVZLK1ttQIkdPU+2RBJRFskx0
5su5wXhekjkRVl+NSBZPtQUmUOP3GlN1+vBJcdyhgYkDgYYABAGvDBP3trHo/KTP3D+Tx1sBCiQjNiGBcsD2W3+x+oeLxNgX
rOwHWdTPNuLPnZLhfhIHHOO4IIZosMGhPHTe9jpa/AC7+eO3ytX8FdeQpx/vJNGyQr2RLjLlXdDkY5v63/TIdDTp2mSU6MDQ
EzCybozRaJHCAW/qUJBAEtw4v5nDP0SPrw==";

/// `openssl pkey -pubout -outform DER` of [`P521_PKCS8`].
pub(crate) const P521_SPKI: &str = "
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBrwwT97ax6Pykz9w/k8dbAQokIzYhgXLA9lt/sfqHi8TYF6zsB1nUzzbiz52S
4X4SBxzjuCCGaLDBoTx03vY6WvwAu/njt8rV/BXXkKcf7yTRskK9kS4y5V3Q5GOb+t/0yHQ06dpklOjA0BMwsm6M0WiRwgFv
6lCQQBLcOL+Zwz9Ej68=";

/// As [`P256_PKCS8`] with `ec_paramgen_curve:secp256k1`.
pub(crate) const K256_PKCS8: &str = "
MIGEAgEAMBAGByqGSM49AgEGBSuBBAAKBG0wawIBAQQgeLk4Ocs6ASdiFEBj3niLWh36CL7FpAfDgnUUYrCl9SqhRANCAAT2
taBPg5+7OmX7PxVKgxW2/2oSSYqczmqHjcy92xwr4MuxH0a+a7Q5DHkI+GvwyVryvrh/61XMtVmuNJzwpeFb";

/// `openssl pkey -pubout -outform DER` of [`K256_PKCS8`].
pub(crate) const K256_SPKI: &str = "
MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAE9rWgT4Ofuzpl+z8VSoMVtv9qEkmKnM5qh43MvdscK+DLsR9Gvmu0OQx5CPhr8Mla
8r64f+tVzLVZrjSc8KXhWw==";

/// `openssl genpkey -algorithm ed25519 -outform DER`.
pub(crate) const ED25519_PKCS8: &str =
    "MC4CAQAwBQYDK2VwBCIEIPlqvveMTv6azQny7RuQEyhwXlpn/TNJTEJ1PnjTkBNo";

/// `openssl dgst -sha256 -sign k.pem` of [`MESSAGE`] with [`P256_PKCS8`].
pub(crate) const ECDSA_P256_SHA256_SIG: &str = "MEQCIDj7uDH2ECtKkz4Dbgiz/khPxRJRxW2NiWu9lgad2S3oAiByFXYbRuhUny0VWmvbqQysJ+oj7dcDDZWCgQSRFb/iMA==";

/// `openssl dgst -sha384 -sign k.pem` of [`MESSAGE`] with [`P384_PKCS8`].
pub(crate) const ECDSA_P384_SHA384_SIG: &str = "
MGQCMEDpIGhEyFDVfYvXNqbwzO2OVFln5+ShMa5k3eBTsoXyVRjKo5rABA8C9RKSLU0X6AIwSpJPsnZcRpAgaVbLTnjkmuMy
F2BHgJqZMrmko3XcUiyEPaN3licRBO3PSTbpnPJF";

/// `openssl dgst -sha512 -sign k.pem` of [`MESSAGE`] with [`P521_PKCS8`].
pub(crate) const ECDSA_P521_SHA512_SIG: &str = "
MIGIAkIAw0DmLM+dpM0RdHkQAuQpz3OWjvJGxoqtaHJTQFDpY/vpO1zBcRLcvPqxR8ExjUaBYX7P8AIgm3RQSB9/lgKTVZYC
QgF8kwAVjOkZSmTxSXcuitYSfe95FJWQl8qJKD7EAvlEkk9NTe+t+W5fWuMwmftmYzQoP7QXjUg+LW6PNawxK9F4Zg==";

/// `openssl dgst -sha256 -sign k.pem` of [`MESSAGE`] with [`K256_PKCS8`], repeated until openssl
/// gave a signature with S > n/2 (openssl does not normalise S).
pub(crate) const ECDSA_K256_SHA256_HIGH_S_SIG: &str = "MEUCIB5xyv8B/d/Ra8tXnVqeZl+wTNZ/xG62ArC+C7g34YmgAiEA32BCYdMq3Q580wRthoOA44ovnAHuwCA9nIk14kaljnU=";

/// `openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -sigopt
/// rsa_mgf1_md:sha256 -sign k.pem` of [`MESSAGE`] with [`RSA_2048_PKCS8`].
pub(crate) const RSA_PSS_SHA256_SIG: &str = "
eH3FhXfCao43+BQLpjFWigpAy2nc3Ld8wILr1szlPpuRwJlCjU2bpgSFvJEwFMjhxyUm4qzfhIg2h5ACsOXpZvHZgW6I/JyI
JFwOVJdMFycEWO063QL5uxq0k83Fy64zJssDj7sc1PzEAD3XMc+bEzh6lDDMq2d1Ld+5EJNgSrVkphwOFt3eFXAyax5wSJC1
vjp4p/ow0jyvZzLWaamPy94lR4r7ds0O1zmyyGxZzVWghf7YRjk3M9BU1z2gBVPuRhfjK9PBgDDVmMyXVrNklv9Ykmf4g9vs
Vp6xylfCeXP6CHOa/ec6ipJ5c3L7VBXpnM7ejOF6Xibb5I0PnwlxOA==";

/// As [`RSA_PSS_SHA256_SIG`] with sha384.
pub(crate) const RSA_PSS_SHA384_SIG: &str = "
ofh1LiMvE4H+ZL3MeJmVZA6E6KgFFJGmiGDuDwRLpuRnQnLkxBC+ssp7DwzbilCgi3WYOX9FTsH6tJI/9anpH683k+CLcWsz
KIibh3mAljU6rDe6Ac/2LAbPJgKiqUA8QYXUQsSXQZ54zxq35mRW1VJzu1F7mUoXWNPAgts5t2f40t0mFBlfqfR/XPu2HH00
H0itNKdrUQww6clgTXsvJv0QXbp8j5GWu1lUn8yBAo5I71k8EeIf3iwRGdJm7rBcw1+y3iZXgLpCp6vLSwriRX0ij/qw679u
18lNsX7IoI8YEZepZZqbIwaHszpASIwlwwN0ofmyUqNGbM+hjwPhgQ==";

/// As [`RSA_PSS_SHA256_SIG`] with sha512.
pub(crate) const RSA_PSS_SHA512_SIG: &str = "
MXJgP2fMQ17rwiR9r4QUnhgEvJDSoceGUwxH3QiJ0hST85QJGUdWvG+vOSI88qtIa4BD/KOcLr80pw/DQDLyv7HGrA4KUNKF
B3Fgm2GOJBtBzOCmK9h1UEPbzu/1vC9pBbN3QIjlkSPyvwlVqdC/lAgaHPHwMW9dlt4kGQYwQWKCuOqZvDmoZBIvpwYGhjR3
YleLjdz2wl6WQUbWbg77Mora74J45eU+yWqmQjls0ormykkxOa0X3mgbUhmBFscjC/GkrbYL6Ae43dZwLTZBtb3zJDO+7jim
m+Gms2Hk8RydVpnn46cbarN3sCorFzoTg59Z916o56HNN4xiStpXHg==";

/// `openssl dgst -sha256 -sign k.pem` of [`MESSAGE`] with [`RSA_2048_PKCS8`].
pub(crate) const RSA_PKCS1_SHA256_SIG: &str = "
W1eqP2BBBS0TRndD2oR47u9rTK3WkvsIRR4wfWmOZ7TY1pjbTm5hTaPNJFpEnvAIBf0BRqbsg6nYoQYbc6lT0+WLSVvltKgi
36DpdipC9YghozH3FKFk1JlYBfMJVSqDK6d8GIVsv/Jao7Gd1uJzgwA+2o1Y48XeSCNWE6RdwV+GikYEsz+3wlCEJ4COmMVG
wJrlXXmQOF9/ALiEcZf3fe+gVxp28jTkc1yLOXj7BPOPHTXVvn4H/P96X9W3zDWJAsUWetRR3y4kC1mScYqpuURp5WzWNuZi
pRo7g7zVIMfFRjtX7k7pXeDe1VrFayodyTtFh/qdgAub3UqIFXFYUw==";

/// As [`RSA_PKCS1_SHA256_SIG`] with sha384.
pub(crate) const RSA_PKCS1_SHA384_SIG: &str = "
mpGZlQeP1cEEhhyy4D9LtEHUc0dvNu+vPxiD3/lAe+dGPpGE39qZt74t4nJdCI8S3Y+gnkeXp3Mznb0tfRtws83HSu8923sI
bCrkF1KQv6Gane9esOQfNBt6MZsLpw1dY61OtzX/sDButyj8pey9esPUXT+U5WxajQjuIfjaORf/Lbb06xFG0P/pdMlfPp+N
gmu2Av6fQN/sHliMhWpTTW5q15OOo1tjvhr4MuFz0rXuC8L1te0luwa41YVhBB52cCWOkvRaAftPL9Zyb/Lph3BXoy3QIFSQ
mOVeuMje/CvFDymz78JGSMNm3boNVCPfUqlFMKAq8HCIufRv/Qb1og==";

/// As [`RSA_PKCS1_SHA256_SIG`] with sha512.
pub(crate) const RSA_PKCS1_SHA512_SIG: &str = "
DBGd+0Opqev3YI1sVxiuoCzbvrS6GIBhgkhAsxwkjSCpeMFFKUMk0PV7p2bCHc8bHJlkbfuc/Ozs1wkeda+HcnR2cmwzzUY6
duW/YN4VrWpOMeFaYuZOJHOzKRkzgYOiVhoU4p//hJ5bWMu0sNw5rNceF/qTmWrutP+m+ZWpabhNVJwQCkGB8JiaW2Xqt95y
bc188gbx6oIYP7Iqy0poQK6cS4frc0iHF6MikHjx6AP5BBI8ijTlIbpc2isB+anEKkhCe5HTTKo4Tc5taJJFhvDvZMNkx5oR
1WgQ3GqbUorxM6COUHYVRBiyOtb5cE9fzC/H8+YDQPyFsKbvkoSCkA==";

/// Bytes 0..=213: the largest OAEP-SHA-1 plaintext for RSA_2048.
pub(crate) const OAEP_SHA1_PLAINTEXT: &str = "
AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZH
SElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6P
kJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1Q==";

/// `openssl pkeyutl -encrypt -pubin -inkey spki.der -keyform DER -pkeyopt rsa_padding_mode:oaep
/// -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1` of [`OAEP_SHA1_PLAINTEXT`] under
/// [`RSA_2048_SPKI`].
pub(crate) const OAEP_SHA1_CIPHERTEXT: &str = "
0dRAyCf636rJ5K3lwRKGnNv8IUnxLE5LowAWWwtWasLtnNGV0ZB4j8sfY1/gBOrtvLInH4agLwEwevBEwHQhZRhqC4ZpFhv/
XMl4yC1+473PeCiAYoRIZ5502KH8mj38oBpEYNx0rcik906QXPZOB8JfWxBfYdv8v2wK0srYwOQib3Mx0BTksCtw6shOeVeZ
fzm5SiRmZokXMvhvg3H/ekEJKvVZsuQGSEa44v12pXbTpMWLZ3+oiXZgXlyFN2wyDXpP4XrMek/jETF04GoN2jyizAQa6YWH
riY+dleGhxbdVEsCpW7+2p5VOtkgTYOqvANIA/kCBcSZ+g14kMo4mw==";

/// 190 bytes `(7 * i) & 0xff`: the largest OAEP-SHA-256 plaintext for RSA_2048.
pub(crate) const OAEP_SHA256_PLAINTEXT: &str = "
AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZWxzeoGIj5adpKuyucDHztXc4+rx
+P8GDRQbIikwNz5FTFNaYWhvdn2Ei5KZoKeutbzDytHY3+bt9PsCCRAXHiUsMzpBSE9WXWRrcnmAh46VnKOqsbi/xs3U2+Lp
8Pf+BQwTGiEoLzY9REtSWWBnbnV8g4qRmJ+mrbS7wsnQ197l7PP6AQgPFh0kKw==";

/// Python `cryptography`: `public_key.encrypt(pt, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
/// algorithm=hashes.SHA256(), label=None))` of [`OAEP_SHA256_PLAINTEXT`] under [`RSA_2048_SPKI`].
pub(crate) const OAEP_SHA256_CIPHERTEXT: &str = "
pr+rEcu9BYlylRCh+nQFcKzIaiTlz9ZgCFLgcJW2F45sRJ80iBBqSKeYFdCo+78OlupqLK2NS8TJ/8i3I1Aqh8ygbD/AAzVb
Ta9ifcIH412Y8zFxvUoQbo1FRIaqD8F1KiXgB3BThboNKmrME6Bef8bTEFF+mBb90D3jGqu/d2YABzK7wooy/bS9Oy+E1T2z
yasZab5bpVa3V3Q1Z081STYZGuF4+pLE03Vnp6f7Zx15ieM+pdfZl4rBeN0aj9cgz354Db4TIpJTRIkHFhCGdUaLWlVkL432
taAeF8O/2EXMS16revbtVrfT9ZGMNYWEvE2DPCbYdshTE9BjaLaOwQ==";

/// A P-256 PKCS#8 key written by `cryptography` (138 bytes: not a multiple of 8, so the RFC 5649
/// padding is exercised).
pub(crate) const IMPORT_MATERIAL: &str = "
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGtuJDhr/XNIzFQ+S82Yju3RNdQngNcp+BH2DR3cso0ehRANC
AASIIHo3g84Rnw1fxJA3MjV7EIgBZt+Ftn4jcFlqRyq3UTMXA8djFckaf6dVKtu7gNR1jDgtiCwuxqIF2/jvs+pT";

/// `openssl pkeyutl -encrypt -pubin -inkey RSA_4096_SPKI -keyform DER -pkeyopt
/// rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1` of a random 32-byte
/// AES key, followed by `openssl enc -id-aes256-wrap-pad -K <hex> -iv A65959A6` of
/// [`IMPORT_MATERIAL`].
pub(crate) const IMPORT_RSA_AES_KEY_WRAP_SHA1: &str = "
cKZOz+uwrIN4I4VpUop9xIhE02aw5JBrdkKJiUE9rjLBA5k5ZOEtuh988rDQKkoAPCU7EWl7lbph+ktE9QlaV7ptfe/Kmmej
i7Uyf/pkqNRruiDWRJldSrkACoi5EonOfSSSR6MogeCe5T8rlVlPRLn3DLHddRzyzfmEuVHM4AtVIQrPYjg/f6k+7IZVn9rJ
ROKljfoPpk+QY1ixaoEQYkzucDnGtGFa93f8oSq2Tzk6wRfEIdz/5nsH+kIyPgDixoNF2+cq2+xu9iI6MRaaJ8+qmHJh1NFs
ArMyenbNo4IBAx/RWJNRzRr1sNCnvP8PUoHcSG2KV96WVba2gJMveJrliqNRJ45F5vrnEIrw+IocWB29MV6VJTkgHLJjFOd/
dHYPf3lRYJ9t3DLmRcOpaVXFXbFUmHj5cSZvVt8QbTDfDeyIqMaO0gWdJy07Pf91t7hQQdW4YRbWqEP3FLpLBENXoURyxCVV
Y5pwQrPuiwAO/pzr/lHozR0h9ZoC1OzoKp8IS8JcJGV5N8tVBS11MKp113TRJINluVDaAp9sAxBCFFi6xJZVSCU+mquQk8mt
8BKwQF1P1ots0s2/ECsTMRx4MQwPjuHH1SiRaqTgTK2NL52Qh96cVY5oNFTLYRkhlQO6Ng3WtUL2dUl5J0civWMj91mavz5e
Z2lG1MeZm7dPw6VCMiKWUh9vOPtUIubUuZx28hWq2mwvR8Ky9P+pwceba28ZTkubcjvYzLmPbgFDw6VlSKzDQvZ83xCN0NxE
fL9onc3miPLliPaoLDOFbEpkakzPjuwnM7UAg4kvMfTL4YSHQL2y7cc7y0zat2+9CIsH8HnjZT7M/Hby3LLp2yn1wmIWvV3t
nnQ/eghFodE3DyXIa/MxOQ==";

/// As [`IMPORT_RSA_AES_KEY_WRAP_SHA1`] with `rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256` and
/// another AES key (the exact commands of the AWS import documentation).
pub(crate) const IMPORT_RSA_AES_KEY_WRAP_SHA256: &str = "
Bbh3hdBX+8T1Ljvpe0tIsMkhphUuB7jigdTvpsIhEazYVWY5HTXBREL3UxyGCsbrQao9abUednzC8cWrGd5TITVezWR2PRP2
em+x6iaUflVTkPZtCCCUv3iDN1qp2Fy/G5InmIQX31w0lZ3i+CLw1vTuPtjgpkQ1R36wVG4imLLOcHPFYIshMUizjcNOjwEr
R5L+CftTp2o6vQQF21V6P0HtBFSG83GmDlEpb0O9WJVa0BffYfk/592PTG9YGR5RZ85IjAlyJVlZfmj5qTZ77znRj9xS9IMf
4XjeER+nAlLrZdSep3erAPGnqNfJebsqrYzUoOmux+lthBnoHQI8BXM5XCtTRPP1SHzJKk9z4A1a2DyyBkhsjZHYzURGxeD9
t/bfVPo45Efo+wolnm9/5g2aokyseCSPWwagnUl/LzhrMWQSYSLxPOdRWeNxqI/7pk0F6iu3qPCxhpUBfFcQj4hjCoyateUQ
2KBf4wKrbgSI2QPdN5WWE/Y8QtodKzqADmXVHbHjkizEPPBCbbo2GQi77d0Sq3nodn4ww83x758aEgCDOMJ+cWG34fbJxG1p
wYZFt18HUlzS9LopOpnA3SMaZmQ6juCYXjbiUvX3EBWmRfYP1IWQb+2Kyf4jQH1ZtyBapOjKai4i3Xi6MbZz8Hiwvg5ViD8O
JgbhqQDkIZ+Oz/J6FuALPe3fPOgwrLwjiW/a3DBxs7ivDpeClr6UNStnpJ9yKToCNC5RahzfQwSDcRm8kjZfQdGKmkBkeL0L
3uwfgsuZcnqJgUFDWHZbYsXTsCllks2OBGfTYtbs/LsQ16AuNHT4VfRctMMZna1rlEMeFzF8dEM1LSUWGrdpRs58EjcWgUSM
dDDt9b6el3gJnOLzbsDprQ==";

/// 32 random bytes (symmetric key material).
pub(crate) const IMPORT_SYMMETRIC_MATERIAL: &str = "N++g9NXADnKXGVyilljWcHDLiIIYbH2oDKDUO77MGR8=";

/// `openssl pkeyutl -encrypt ... -pkeyopt rsa_padding_mode:oaep` (SHA-1 is openssl's default) of
/// [`IMPORT_SYMMETRIC_MATERIAL`] under [`RSA_4096_SPKI`].
pub(crate) const IMPORT_RSAES_OAEP_SHA1: &str = "
m6AMdhKcl4kI+0DMbQXsEvrHk/d3H2hBAhMUYHjsKOHDKnwPVV9NkIlknBZ6XSzRv/cSFt4j5GW6JdOUyxKiFMDOpxDliD8G
RsifDtUpfklD1R6tQfe9q9CHHN3Xddkdbc4SAS5a3ToTYSsW2TJYoiDJjOmnt7lEQerRnD7a+sabsJ9CI1ZdwP4MQZjPzRhw
+Q2vFA1kZMnuiXq0RjYAaHGht3hvbC/DJZjQKPWniLX7ILkKaWc8HkVU7xZZxzCMAZ+NWK3aITaqu1g53pPxQpUiW14zz99a
k/3rvn4FwZPiTZF4y8xkGweOb8Hh09MHgV5d4H6mtdtMjXJlmoLQUr7aeeqMZ/Ao0qNDibC1Yrl7er3XCRW43HKeeoHnzYdK
bJEY5P2XTMrEfi1VnT2/npEDRhERoVw/OJmqAV7LNF8/mujMXL8ZxynfI8yiIGwt73Sr33ASlHNGW6Dsrxc4y3TWxTqTm6qE
je6dOtGSTHDdfoq4eFARU8CGEtkhxNjhZ/xJTyYSRpQ0aG1/cWj4W0eP9EBfYC7G2caGOwb0beb0aTZChJIffwb1Fxw4se7j
UcX/uJ9XCXdHVanwPUsopEppBC06z2c1ajshyDVoO0kZm4aSrS533RzhmzVAOye8y1BdfFFuYb7ipgZe0pnQiS0xptB+DS/M
VO7iYJ5+08c=";

/// `openssl pkeyutl -encrypt ... -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
/// -pkeyopt rsa_mgf1_md:sha256` of [`IMPORT_SYMMETRIC_MATERIAL`] under [`RSA_4096_SPKI`].
pub(crate) const IMPORT_RSAES_OAEP_SHA256: &str = "
DeU+/0bqxtB3EFfHGqFe/ti5WU0X/TjjEHT3MwwnaCB823BNSWXNKWCXl2icFubwqfzdcYYLaFpc4jxegyeepjifDFQ6PO7B
XhEoyX4nEUJK7+6ln88MAOiN/6RUF+V2k4oBde0+BEBT+XmNihGTAxFvC3+HxfColxIRnCvfUe9ModIuynGBYDfVG8B1E6mo
/QGls0X/cVA0RJz6FfhNRZzGQ9iMLLC1/gvzHzxdkcITNpt8107hJFI+nzWtKeJ/U6NiO27Dw02ZeCPD/MsU+mUkS7fC+X2R
YBuYJgh2fG08Pel/8EjfMwMPvbxHVia7hKQil/p+MzG9ilI5Oap1+UgFK6wqTpLv7LLHxg0145jOZYFi46sHUF+G3HtK1Jdi
1dZRAKf14OOGuFwdheeEgIO6HUZQhci70wsrxzHRsOXqeaooM4/yPfNzsyMu2dXH/t9Gt4DE796iHJxcQszD+DlwUcQHea4M
XwdAnm9PXqcAcUp8CP14/iY+TAnzD7YhpJqorAu9NNS/l+z9gZqgSOiArt1ePdgKWnmn7i6qVbbRjScrrL4klrAa3FlkIU/r
z0SHrmXLuIBV2nQMTTyNToSf7iRgqlI+SpIoYV2+mTez20NjWI1UtviX0vStBT2k1crFvaJ4/Td+LjH3nJKmXEejM3Z6OatT
NtlULTt89uQ=";

/// A peer key generated by `cryptography` (`ec.generate_private_key(ec.SECP256R1())`), SPKI DER.
pub(crate) const ECDH_P256_PEER_SPKI: &str = "
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHA1CFtO4N0NtMVHFRHCxsS4mNUrRQjrd+ymTV+MUJk07ZOPhiNdygey+D2r4
MIaThResikaG4Cbw+wZ6ZFso3g==";

/// `cryptography`: `our_key.exchange(ec.ECDH(), peer_public)` with [`P256_PKCS8`] and
/// [`ECDH_P256_PEER_SPKI`].
pub(crate) const ECDH_P256_SHARED: &str = "25kcCo2s3Kw1E3bm3RQeFj0tdGktJ+uRh8wUn0fQQE4=";

/// As [`ECDH_P256_PEER_SPKI`] on SECP384R1.
pub(crate) const ECDH_P384_PEER_SPKI: &str = "
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEkO1ZiUbs3fwtHdhOkZ+5OCD2qQssI38QnBo4Ahsb9KpmtZRPVhUELGCTF0ZgJKDy
bDStSJ20kFaYk+yNyLcs99REubFuGalOdKVWkfpwRnqSu1mDoyDTMAzeHzE2xqnS";

/// As [`ECDH_P256_SHARED`] with [`P384_PKCS8`] and [`ECDH_P384_PEER_SPKI`].
pub(crate) const ECDH_P384_SHARED: &str =
    "NHcVDA/fuuiuSFM5BXqUApk3skAd0zQw2ZVtRR9scTiJ0CPVaDv9HKnxXR4IB2A8";

/// As [`ECDH_P256_PEER_SPKI`] on SECP521R1.
pub(crate) const ECDH_P521_PEER_SPKI: &str = "
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAmBYvck6rYNwPQup9T7kNtuSecLmG0ygJSSbgFaAki8lU7J3QtGpTwitJ2APZ
sV7tN5r7nDmzxwGsxBPdl6cRPbUBL6JFBXPBHEs+HPdQ5rSfJZ3QkrxYGZC6HiizyrwbOKNa/ev93dKrs8zVoMPZcmZZnlPK
qYSg5+x4eTRlGNIHcHc=";

/// As [`ECDH_P256_SHARED`] with [`P521_PKCS8`] and [`ECDH_P521_PEER_SPKI`] (66 bytes).
pub(crate) const ECDH_P521_SHARED: &str =
    "AbWhxdEbEauuyrlk/SwpjoH0IBdVTCCJx7YdMfqoh3y59/YqZXQ+atuYo018ZzgTFYfRIjORgbFXPVN5LOgmEkKh";

// The synchronizer's request format (version 2) built with Python `cryptography` alone, from the
// description in the README, by this script:
//
//     import os, struct, hashlib, hmac, base64
//     from cryptography.hazmat.primitives.asymmetric import ec
//     from cryptography.hazmat.primitives import serialization, hashes
//     from cryptography.hazmat.primitives.kdf.hkdf import HKDF
//     from cryptography.hazmat.primitives.ciphers.aead import AESGCM
//     spki = lambda k: k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
//     f16 = lambda b: struct.pack(">H", len(b)) + b
//     f32 = lambda b: struct.pack(">I", len(b)) + b
//     sender = ec.generate_private_key(ec.SECP384R1())
//     session = ec.generate_private_key(ec.SECP384R1())
//     eph = ec.generate_private_key(ec.SECP384R1())
//     session_pub, eph_pub = spki(session), spki(eph)
//     def aad(label, key_id, src, dst, version, ctx):
//         return label + f16(key_id) + f16(src) + f16(dst) + struct.pack(">Q", version) + f32(ctx)
//     challenge, nonce = os.urandom(32), os.urandom(12)
//     T = aad(b"kmsim/sync/v2/request", b"mrk-1234abcd12ab34cd56ef1234567890ab", b"us-east-1", b"eu-west-1", 7, b"ctx") + f16(session_pub) + f16(eph_pub) + challenge
//     th = hashlib.sha384(T).digest()
//     z = eph.exchange(ec.ECDH(), session.public_key())
//     okm = HKDF(hashes.SHA384(), 64, challenge, b"kmsim/sync/v2/keys" + th).derive(z)
//     ct = AESGCM(okm[:32]).encrypt(nonce, b"material sealed by python", T)
//     sig = sender.sign(b"kmsim/sync/v2/request-signature" + th + nonce + f32(ct), ec.ECDSA(hashes.SHA384()))
//     sid = hashlib.sha384(b"kmsim/sync/v2/session-key-id" + session_pub).digest()[:16]
//     sealed = b"\x02" + f16(eph_pub) + challenge + sid + nonce + f32(ct) + f16(sig)
//     answer = b"\x02" + hmac.new(okm[32:], aad(b"kmsim/sync/v2/answer", b"mrk-1234abcd12ab34cd56ef1234567890ab", b"eu-west-1", b"us-east-1", 7, b"answer"), hashlib.sha384).digest()
//     pk8 = session.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
//     for name, v in [("SYNC_SENDER_SPKI", spki(sender)), ("SYNC_SESSION_PKCS8", pk8), ("SYNC_REQUEST", sealed), ("SYNC_ANSWER", answer)]:
//         b = base64.b64encode(v).decode()
//         print(name, b)

/// The static P-384 key of the sending Region, SPKI DER.
pub(crate) const SYNC_SENDER_SPKI: &str = "
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEjFAcTdkOhDaab5SgaG2cHS59yKxQXF9XWydt8UMSiTFpEDmAzQSwpB1lY8qq5q3o
j3IsndxsT5L8mrncqmO87C8Hk5lsyudET98jk91WVdjofhcduI8KyKrSOl7kviQ6";

/// The receiving node's session key, PKCS#8 DER.
pub(crate) const SYNC_SESSION_PKCS8: &str = "
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCgve7uqohvQxhu+gB8kmcJAbhoiQs+gHyQoKOQP36/cpq+R3LL
g6KDhVBvyJHTi7ahZANiAAQvZn9w3RQqGyfac/O+DCXTZlXNDuP4Qc4ruWP3+l+1Ut4Zoehx52dvnOEZ3Rri4KpXxCw02SsT
sH61M/nHu+BE8f4L8l0o5L+t3JfljpCbTP9CQ0jSyOSG4GHlL71RMIY=";

/// The sealed request: `b"material sealed by python"` for key
/// `mrk-1234abcd12ab34cd56ef1234567890ab`, `us-east-1` → `eu-west-1`, stamp 7, message `b"ctx"`.
pub(crate) const SYNC_REQUEST: &str = "
AgB4MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEqkAdcZ0jOaMWR+wZW5eAltSARC4NO1Qlzm4DCUzMh7dG+C08+/6+W1abMAC6
Bxk3z+ExnIOsSvgXr431N+bK/p/f/GMs1Xyh41n+Qc2FihoIw56Yh6kESfpmXB9YCIt9dBqffDNA/gnP58uEdwr6o06L9bxd
+OnYpEN6/BcyVWIH8VoSS1yfLq+PUPSMun/G59GNdTx65r2I7/6zAAAAKbOOpdSXPUs5bIlIsSzqxhYioTkZrYUDhHJ0hShs
8PtkX66J01QPJSXgAGYwZAIwGHaIuhVcRUbO+kHLNXf8f/RD295w9wI2d65wZI2FdTC5xUJjx4P2EWyc4RvJiq5xAjBVySm1
9CNruK3eFYWp0edbVmVJUNsn7WS/tRu33KZrYhWP0wNXHSKLHXxgV/BFVFk=";

/// The answer `b"answer"` (source `eu-west-1`, destination `us-east-1`, same key and stamp)
/// authenticated under the request's answer key.
pub(crate) const SYNC_ANSWER: &str = "
AmY/blEThiki4Cx/4IN84pDhVtgViSq2wZLsQR4EvzSRtQREJK+ms1hvJW6qmt7atQ==";
