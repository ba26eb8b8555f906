"""The ebMS 3 UserMessage header as values, read from a (verified) eb:Messaging element."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from .constants import NS_EB
from .errors import EbmsError, invalid_header, value_inconsistent
from .xml import text

EB = "{%s}" % NS_EB


@dataclass(frozen=True)
class PartInfo:
    href: str | None
    properties: tuple[tuple[str, str], ...]

    def prop(self, name: str) -> str | None:
        for k, v in self.properties:
            if k == name:
                return v
        return None

    @property
    def cid(self) -> str | None:
        return self.href[4:] if self.href and self.href.startswith("cid:") else None


@dataclass(frozen=True)
class Property:
    name: str
    value: str
    type: str | None


@dataclass(frozen=True)
class UserMessageHeader:
    message_id: str
    timestamp: str
    ref_to_message_id: str | None
    mpc: str | None
    from_party_ids: tuple[tuple[str, str | None], ...]  # (value, type)
    from_role: str
    to_party_ids: tuple[tuple[str, str | None], ...]
    to_role: str
    agreement_ref: str
    agreement_ref_attrs: tuple[tuple[str, str], ...]
    service: str
    service_type: str | None
    action: str
    conversation_id: str
    properties: tuple[Property, ...]
    parts: tuple[PartInfo, ...]

    @property
    def from_party(self) -> str:
        return self.from_party_ids[0][0] if self.from_party_ids else ""

    @property
    def to_party(self) -> str:
        return self.to_party_ids[0][0] if self.to_party_ids else ""

    def get_property(self, name: str) -> Property | None:
        found = [p for p in self.properties if p.name == name]
        return found[0] if found else None

    @property
    def original_sender(self) -> str | None:
        p = self.get_property("originalSender")
        return p.value if p else None

    @property
    def final_recipient(self) -> str | None:
        p = self.get_property("finalRecipient")
        return p.value if p else None

    @property
    def document_type_scheme(self) -> str:
        return self.action.split("::", 1)[0] if "::" in self.action else ""

    @property
    def document_type_id(self) -> str:
        return self.action.split("::", 1)[1] if "::" in self.action else self.action


def user_message_of(messaging: etree._Element) -> etree._Element:
    ums = messaging.findall(EB + "UserMessage")
    sigs = messaging.findall(EB + "SignalMessage")
    if len(ums) > 1:
        raise value_inconsistent("eb:Messaging contains more than one UserMessage", "user-message-count")
    if not ums:
        raise value_inconsistent("eb:Messaging contains no UserMessage", "user-message-count")
    if sigs:
        raise value_inconsistent("a UserMessage must not be bundled with a SignalMessage", "bundling")
    return ums[0]


def _parties(el: etree._Element | None) -> tuple[tuple[tuple[str, str | None], ...], str]:
    if el is None:
        return (), ""
    ids = tuple((text(p), p.get("type")) for p in el.findall(EB + "PartyId"))
    return ids, text(el.find(EB + "Role"))


# ebMS 3 Core schema: children that occur at most once (a second copy would be silently ignored).
_AT_MOST_ONCE = {
    "UserMessage": ("MessageInfo", "PartyInfo", "CollaborationInfo", "MessageProperties", "PayloadInfo"),
    "MessageInfo": ("Timestamp", "MessageId", "RefToMessageId"),
    "PartyInfo": ("From", "To"),
    "From": ("Role",),
    "To": ("Role",),
    "CollaborationInfo": ("AgreementRef", "Service", "Action", "ConversationId"),
    "PartInfo": ("PartProperties",),
}


def _check_repeated(um: etree._Element) -> None:
    for el in um.iter(etree.Element):
        once = _AT_MOST_ONCE.get(etree.QName(el).localname) if el.tag.startswith(EB) else None
        if not once:
            continue
        names = [etree.QName(c).localname for c in el if isinstance(c.tag, str) and c.tag.startswith(EB)]
        for name in once:
            if names.count(name) > 1:
                raise invalid_header(f"eb:{name} occurs more than once in eb:{etree.QName(el).localname}",
                                     "repeated-element")


def read_header(messaging: etree._Element) -> UserMessageHeader:
    """Read the header values. Only presence/shape is enforced here (0009/0003); the Peppol
    P-Mode rules are checked by `usermessage.check_pmode`."""
    um = user_message_of(messaging)
    _check_repeated(um)
    mi = um.find(EB + "MessageInfo")
    message_id = text(mi.find(EB + "MessageId")) if mi is not None else ""
    if not message_id:
        raise invalid_header("eb:MessageInfo/eb:MessageId is missing", "message-id")
    pi = um.find(EB + "PartyInfo")
    frm, frm_role = _parties(pi.find(EB + "From") if pi is not None else None)
    to, to_role = _parties(pi.find(EB + "To") if pi is not None else None)
    ci = um.find(EB + "CollaborationInfo")
    ag = ci.find(EB + "AgreementRef") if ci is not None else None
    svc = ci.find(EB + "Service") if ci is not None else None
    props = tuple(
        Property(p.get("name") or "", text(p), p.get("type"))
        for p in um.findall(EB + "MessageProperties/" + EB + "Property")
    )
    parts = []
    for part in um.findall(EB + "PayloadInfo/" + EB + "PartInfo"):
        pp = tuple((p.get("name") or "", text(p)) for p in part.findall(EB + "PartProperties/" + EB + "Property"))
        parts.append(PartInfo(part.get("href"), pp))
    return UserMessageHeader(
        message_id=message_id,
        timestamp=text(mi.find(EB + "Timestamp")) if mi is not None else "",
        ref_to_message_id=text(mi.find(EB + "RefToMessageId")) or None if mi is not None else None,
        mpc=um.get("mpc"),
        from_party_ids=frm, from_role=frm_role, to_party_ids=to, to_role=to_role,
        agreement_ref=text(ag),
        agreement_ref_attrs=tuple(sorted(ag.attrib.items())) if ag is not None else (),
        service=text(svc), service_type=svc.get("type") if svc is not None else None,
        action=text(ci.find(EB + "Action")) if ci is not None else "",
        conversation_id=text(ci.find(EB + "ConversationId")) if ci is not None else "",
        properties=props, parts=tuple(parts),
    )


def message_id_hint(root: etree._Element) -> str | None:
    """Best-effort MessageId for error signals before the header is verified."""
    for el in root.iter(EB + "MessageId"):
        return text(el) or None
    return None


__all__ = ["PartInfo", "Property", "UserMessageHeader", "read_header", "user_message_of", "message_id_hint",
           "EbmsError"]
