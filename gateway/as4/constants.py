"""Namespaces, algorithm URIs and the Peppol P-Mode values (Peppol AS4 profile 2.0.3 / CEF eDelivery AS4 1.14).

Kept in one place so the builder and the verifier can never disagree on a value.
"""

from __future__ import annotations

# --- namespaces -------------------------------------------------------------------------------
NS_S12 = "http://www.w3.org/2003/05/soap-envelope"
NS_S11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
NS_EBBP = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_XENC11 = "http://www.w3.org/2009/xmlenc11#"
NS_EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
NS_XML = "http://www.w3.org/XML/1998/namespace"

NSMAP = {
    "S12": NS_S12,
    "eb": NS_EB,
    "ebbp": NS_EBBP,
    "wsse": NS_WSSE,
    "wsse11": NS_WSSE11,
    "wsu": NS_WSU,
    "ds": NS_DS,
    "xenc": NS_XENC,
    "xenc11": NS_XENC11,
    "ec": NS_EC,
}

WSU_ID = f"{{{NS_WSU}}}Id"

# --- algorithms ---------------------------------------------------------------------------------
C14N_EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
TRANSFORM_ATTACHMENT_CONTENT = (
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform"
)
TRANSFORM_ATTACHMENT_CIPHERTEXT = (
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform"
)
ENC_AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
KT_RSA_OAEP = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
KT_RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
MGF1_SHA256 = "http://www.w3.org/2009/xmlenc11#mgf1sha256"
MGF1_SHA1 = "http://www.w3.org/2009/xmlenc11#mgf1sha1"
DIGEST_SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
ENC_TYPE_ATTACHMENT_CONTENT_ONLY = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Only"
TOKEN_TYPE_ENCRYPTED_KEY = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"

BST_VALUE_TYPE_X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BST_ENCODING_BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
KEYID_SKI = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"

# --- Peppol P-Mode ------------------------------------------------------------------------------
AGREEMENT_REF = "urn:fdc:peppol.eu:2017:agreements:tia:ap_provider"
PARTY_ID_TYPE = "urn:fdc:peppol.eu:2017:identifiers:ap"
ROLE_INITIATOR = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator"
ROLE_RESPONDER = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder"
DEFAULT_MPC = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC"
SERVICE_TYPE_DEFAULT = "cenbii-procid-ubl"
DOCTYPE_SCHEME_DEFAULT = "busdox-docid-qns"
PARTICIPANT_SCHEME = "iso6523-actorid-upis"
PROP_ORIGINAL_SENDER = "originalSender"
PROP_FINAL_RECIPIENT = "finalRecipient"
PROP_TRACKING_IDENTIFIER = "trackingIdentifier"
COMPRESSION_GZIP = "application/gzip"
TEST_SERVICE = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service"
TEST_ACTION = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test"

SOAP_CONTENT_TYPE = "application/soap+xml"
