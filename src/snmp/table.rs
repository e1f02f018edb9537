//! The interfaces table as IF-MIB lays it out: rows by ifIndex, read a column at a time
//! from `ifTable` (ifDescr, the two statuses) and `ifXTable` (ifName, ifAlias, the 64-bit
//! octet counters). Assembly is pure, so every odd answer is a unit test here.

use std::collections::BTreeMap;

use async_snmp::{Oid, Value, VarBind};

use super::ReadError;

/// One row of the interfaces table. A column the agent does not have (old agents lack
/// `ifXTable`) leaves its field `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub index: u32,
    pub name: Option<String>,
    pub descr: Option<String>,
    pub alias: Option<String>,
    pub admin: Option<AdminStatus>,
    pub oper: Option<OperStatus>,
    pub in_octets: Option<u64>,
    pub out_octets: Option<u64>,
}

/// ifAdminStatus: what the router's operator configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminStatus {
    Up,
    Down,
    Testing,
    /// A value IF-MIB does not define; kept rather than refused, it is the agent's word.
    Other(i32),
}

/// ifOperStatus: what the line is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperStatus {
    Up,
    Down,
    Testing,
    Unknown,
    Dormant,
    NotPresent,
    LowerLayerDown,
    Other(i32),
}

impl AdminStatus {
    fn from_mib(v: i32) -> AdminStatus {
        match v {
            1 => AdminStatus::Up,
            2 => AdminStatus::Down,
            3 => AdminStatus::Testing,
            v => AdminStatus::Other(v),
        }
    }
}

impl OperStatus {
    fn from_mib(v: i32) -> OperStatus {
        match v {
            1 => OperStatus::Up,
            2 => OperStatus::Down,
            3 => OperStatus::Testing,
            4 => OperStatus::Unknown,
            5 => OperStatus::Dormant,
            6 => OperStatus::NotPresent,
            7 => OperStatus::LowerLayerDown,
            v => OperStatus::Other(v),
        }
    }
}

/// The columns read, each walked on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Descr,
    Alias,
    Admin,
    Oper,
    HcInOctets,
    HcOutOctets,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::Name,
        Column::Descr,
        Column::Alias,
        Column::Admin,
        Column::Oper,
        Column::HcInOctets,
        Column::HcOutOctets,
    ];

    /// The column's OID; a row's OID is this plus its ifIndex.
    pub fn oid(self) -> Oid {
        const IF_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];
        const IF_X_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
        match self {
            Column::Descr => Oid::from_slice(&IF_ENTRY).child(2),
            Column::Admin => Oid::from_slice(&IF_ENTRY).child(7),
            Column::Oper => Oid::from_slice(&IF_ENTRY).child(8),
            Column::Name => Oid::from_slice(&IF_X_ENTRY).child(1),
            Column::HcInOctets => Oid::from_slice(&IF_X_ENTRY).child(6),
            Column::Alias => Oid::from_slice(&IF_X_ENTRY).child(18),
            Column::HcOutOctets => Oid::from_slice(&IF_X_ENTRY).child(10),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Column::Name => "ifName",
            Column::Descr => "ifDescr",
            Column::Alias => "ifAlias",
            Column::Admin => "ifAdminStatus",
            Column::Oper => "ifOperStatus",
            Column::HcInOctets => "ifHCInOctets",
            Column::HcOutOctets => "ifHCOutOctets",
        }
    }
}

/// Rows from the walked columns, sorted by ifIndex. A row exists when any column has it.
/// An exception value (noSuchInstance…) is a missing cell; a value of the wrong type or
/// a row OID that is not one ifIndex means the agent is not answering IF-MIB, and the
/// whole read is refused rather than half believed.
pub fn assemble(columns: &[(Column, Vec<VarBind>)]) -> Result<Vec<Interface>, ReadError> {
    let mut rows: BTreeMap<u32, Interface> = BTreeMap::new();
    for (column, varbinds) in columns {
        let base = column.oid();
        for vb in varbinds {
            if vb.value.is_exception() {
                continue;
            }
            let index = row_index(&base, &vb.oid).ok_or_else(|| {
                ReadError::Malformed(format!(
                    "{} row {} is not an ifIndex",
                    column.label(),
                    vb.oid
                ))
            })?;
            let wrong_type = || {
                ReadError::Malformed(format!(
                    "{}.{index} has type {}",
                    column.label(),
                    vb.value.kind()
                ))
            };
            let row = rows.entry(index).or_insert_with(|| Interface::empty(index));
            match column {
                Column::Name | Column::Descr | Column::Alias => {
                    let Value::OctetString(bytes) = &vb.value else {
                        return Err(wrong_type());
                    };
                    // DisplayString is ASCII by the MIB; lossy keeps a stray byte visible.
                    let text = Some(String::from_utf8_lossy(bytes).into_owned());
                    match column {
                        Column::Name => row.name = text,
                        Column::Descr => row.descr = text,
                        _ => row.alias = text,
                    }
                }
                Column::Admin | Column::Oper => {
                    let Value::Integer(v) = vb.value else {
                        return Err(wrong_type());
                    };
                    if *column == Column::Admin {
                        row.admin = Some(AdminStatus::from_mib(v));
                    } else {
                        row.oper = Some(OperStatus::from_mib(v));
                    }
                }
                Column::HcInOctets | Column::HcOutOctets => {
                    // Counter64 only: a 32-bit counter here would wrap every few minutes
                    // on a gigabit line and turn into nonsense rates later.
                    let Value::Counter64(v) = vb.value else {
                        return Err(wrong_type());
                    };
                    if *column == Column::HcInOctets {
                        row.in_octets = Some(v);
                    } else {
                        row.out_octets = Some(v);
                    }
                }
            }
        }
    }
    Ok(rows.into_values().collect())
}

/// The ifIndex of a row OID: exactly one arc past the column, 1 to 2^31−1 (InterfaceIndex).
fn row_index(column: &Oid, row: &Oid) -> Option<u32> {
    match row.strip_prefix(column)?.arcs() {
        [index] if (1..=i32::MAX as u32).contains(index) => Some(*index),
        _ => None,
    }
}

impl Interface {
    fn empty(index: u32) -> Interface {
        Interface {
            index,
            name: None,
            descr: None,
            alias: None,
            admin: None,
            oper: None,
            in_octets: None,
            out_octets: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn cell(column: Column, index: u32, value: Value) -> VarBind {
        VarBind::new(column.oid().child(index), value)
    }

    fn text(s: &str) -> Value {
        Value::OctetString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn rows_join_across_columns_and_sort_by_index() {
        let columns = vec![
            (
                Column::Name,
                vec![
                    cell(Column::Name, 2, text("Gi0/1")),
                    cell(Column::Name, 1, text("Gi0/0")),
                ],
            ),
            (
                Column::Oper,
                vec![
                    cell(Column::Oper, 1, Value::Integer(1)),
                    cell(Column::Oper, 2, Value::Integer(7)),
                ],
            ),
            (
                Column::Admin,
                vec![cell(Column::Admin, 2, Value::Integer(9))],
            ),
            (
                Column::HcInOctets,
                vec![cell(Column::HcInOctets, 1, Value::Counter64(u64::MAX))],
            ),
            // ifXTable missing on this agent: no rows at all.
            (Column::Alias, vec![]),
        ];
        let rows = assemble(&columns).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].index, 1);
        assert_eq!(rows[0].name.as_deref(), Some("Gi0/0"));
        assert_eq!(rows[0].oper, Some(OperStatus::Up));
        assert_eq!(rows[0].in_octets, Some(u64::MAX));
        assert_eq!(rows[0].alias, None);
        assert_eq!(rows[1].oper, Some(OperStatus::LowerLayerDown));
        assert_eq!(rows[1].admin, Some(AdminStatus::Other(9)));
    }

    #[test]
    fn exceptions_are_missing_cells() {
        let columns = vec![(
            Column::Descr,
            vec![cell(Column::Descr, 3, Value::NoSuchInstance)],
        )];
        assert_eq!(assemble(&columns).unwrap(), vec![]);
    }

    #[test]
    fn wrong_types_and_odd_rows_are_malformed() {
        let bad_type = vec![(Column::Oper, vec![cell(Column::Oper, 1, text("up"))])];
        assert_eq!(
            assemble(&bad_type).unwrap_err().to_string(),
            "malformed answer: ifOperStatus.1 has type octet_string"
        );
        let counter32 = vec![(
            Column::HcOutOctets,
            vec![cell(Column::HcOutOctets, 1, Value::Counter32(5))],
        )];
        assert!(matches!(assemble(&counter32), Err(ReadError::Malformed(_))));
        let two_arcs = vec![(
            Column::Name,
            vec![VarBind::new(
                Column::Name.oid().child(1).child(2),
                text("x"),
            )],
        )];
        assert!(matches!(assemble(&two_arcs), Err(ReadError::Malformed(_))));
        let zero = vec![(Column::Name, vec![cell(Column::Name, 0, text("x"))])];
        assert!(matches!(assemble(&zero), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn non_utf8_names_do_not_fail() {
        let columns = vec![(
            Column::Alias,
            vec![cell(
                Column::Alias,
                1,
                Value::OctetString(Bytes::from_static(b"MAGTI\xff")),
            )],
        )];
        assert_eq!(
            assemble(&columns).unwrap()[0].alias.as_deref(),
            Some("MAGTI\u{fffd}")
        );
    }
}
