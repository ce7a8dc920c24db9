//! The documented fields of Enate's webhook bodies: the keys that name them (in
//! any casing, with or without separators) and their names in the event's
//! `data`. Shared by `payload`, whose parse errors name a field, and `normalize`,
//! which fills it; neither needs the other for it.

use crate::webhook::fold_ascii;

/// The documented fields of Enate's webhook bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Guid,
    PacketGuid,
    Reference,
    Title,
    Name,
    Status,
    ProcessType,
    ProcessTypeName,
    RagStatus,
    DueDate,
    ResolvedOn,
    CustomerName,
    SupplierName,
    ContractName,
    ServiceName,
    ServiceLineName,
    StartedByMethod,
    CommunicationType,
    Sender,
    From,
    Cc,
    Subject,
    AttachmentCount,
}

impl Field {
    /// Keys are matched folded: any casing, `_`, `-` or space ignored.
    pub fn from_key(key: &str) -> Option<Field> {
        let mut buffer = [0u8; 32];
        Some(match fold_ascii(key, &mut buffer)? {
            "guid" => Field::Guid,
            "packetguid" => Field::PacketGuid,
            "reference" => Field::Reference,
            "title" => Field::Title,
            "name" => Field::Name,
            "status" => Field::Status,
            "processtype" => Field::ProcessType,
            "processtypename" => Field::ProcessTypeName,
            "ragstatus" => Field::RagStatus,
            "duedate" => Field::DueDate,
            "resolvedon" => Field::ResolvedOn,
            "customername" => Field::CustomerName,
            "suppliername" => Field::SupplierName,
            "contractname" => Field::ContractName,
            "servicename" => Field::ServiceName,
            "servicelinename" => Field::ServiceLineName,
            "startedbymethod" => Field::StartedByMethod,
            "communicationtype" => Field::CommunicationType,
            "sender" => Field::Sender,
            "from" => Field::From,
            "cc" => Field::Cc,
            "subject" => Field::Subject,
            "attachmentcount" => Field::AttachmentCount,
            _ => return None,
        })
    }

    /// The name in `data`, used in warnings and reasons too.
    pub fn data_name(self) -> &'static str {
        match self {
            Field::Guid => "guid",
            Field::PacketGuid => "packet_guid",
            Field::Reference => "reference",
            Field::Title => "title",
            Field::Name => "name",
            Field::Status => "status",
            Field::ProcessType => "process_type",
            Field::ProcessTypeName => "process_type_name",
            Field::RagStatus => "rag_status",
            Field::DueDate => "due_date",
            Field::ResolvedOn => "resolved_on",
            Field::CustomerName => "customer_name",
            Field::SupplierName => "supplier_name",
            Field::ContractName => "contract_name",
            Field::ServiceName => "service_name",
            Field::ServiceLineName => "service_line_name",
            Field::StartedByMethod => "started_by_method",
            Field::CommunicationType => "communication_type",
            Field::Sender => "sender",
            Field::From => "from",
            Field::Cc => "cc",
            Field::Subject => "subject",
            Field::AttachmentCount => "attachment_count",
        }
    }
}

/// The `data` name of the field an Enate key sets, if the key is a documented one.
pub fn data_name(key: &str) -> Option<&'static str> {
    Field::from_key(key).map(Field::data_name)
}
