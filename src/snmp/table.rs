//! The interfaces table as IF-MIB lays it out: rows by ifIndex, read a column at a time
//! from `ifTable` (ifDescr, the two statuses) and `ifXTable` (ifName, ifAlias, the 64-bit
//! octet counters). Assembly is pure, and so is [`ColumnWalk`], the bookkeeping of the
//! column-parallel GETBULK walk, so every odd answer is a unit test here.

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

/// The columns read, walked side by side (see [`ColumnWalk`]).
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

/// The walk of several columns at once, the way net-snmp's `snmptable` and snmp_exporter's
/// bulk walks do it: every request is one GETBULK carrying one varbind per column still
/// open (non-repeaters 0), each continuing from the last OID that column returned; a
/// column closes when its answer leaves its subtree (the next column's first row, or
/// endOfMibView). A small table is then a single request, not one walk per column.
///
/// The bounds of the crate's walk hold per column: OIDs strictly increasing (an agent
/// going backwards or standing still is refused, not followed forever) and at most
/// [`MAX_INTERFACES`](super::MAX_INTERFACES) rows. Every non-empty answer closes a
/// column or moves one forward, so the walk ends whatever the agent sends.
#[derive(Debug)]
pub struct ColumnWalk {
    columns: Vec<ColumnCursor>,
    limit: usize,
}

#[derive(Debug)]
struct ColumnCursor {
    column: Column,
    base: Oid,
    /// Where the next request for this column starts: the column's OID, then its last row.
    last: Oid,
    rows: Vec<VarBind>,
    done: bool,
}

impl ColumnWalk {
    /// A walk of `columns` allowing at most `limit` rows in any of them.
    pub fn new(columns: &[Column], limit: usize) -> ColumnWalk {
        ColumnWalk {
            columns: columns
                .iter()
                .map(|&column| ColumnCursor {
                    column,
                    base: column.oid(),
                    last: column.oid(),
                    rows: Vec::new(),
                    done: false,
                })
                .collect(),
            limit,
        }
    }

    /// The OIDs of the next GETBULK, one per open column in the walk's order; empty
    /// when every column has left its subtree.
    pub fn next_request(&self) -> Vec<Oid> {
        self.open().map(|c| c.last.clone()).collect()
    }

    pub fn is_done(&self) -> bool {
        self.open().next().is_none()
    }

    /// Takes the answer to the request [`next_request`](Self::next_request) last gave.
    /// A GETBULK answer with `n` repeaters is row-major: varbind `i` continues the
    /// `i % n`-th requested column. An answer cut short (the agent trims it to fit its
    /// message size, RFC 3416 §4.2.3) is fine: columns it did not reach are asked
    /// again from where they stood. An empty answer ends the walk, as it ends the
    /// crate's (nothing to continue from).
    pub fn absorb(&mut self, varbinds: Vec<VarBind>) -> Result<(), ReadError> {
        let open: Vec<usize> = (0..self.columns.len())
            .filter(|&i| !self.columns[i].done)
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        if varbinds.is_empty() {
            for &i in &open {
                self.columns[i].done = true;
            }
            return Ok(());
        }
        for (k, vb) in varbinds.into_iter().enumerate() {
            let cursor = &mut self.columns[open[k % open.len()]];
            // Repetitions past a column's end carry the columns after it: not ours.
            if cursor.done {
                continue;
            }
            if vb.value.is_exception() || !vb.oid.starts_with(&cursor.base) {
                cursor.done = true;
                continue;
            }
            if vb.oid <= cursor.last {
                return Err(ReadError::Malformed("rows out of order".to_string()));
            }
            if cursor.rows.len() >= self.limit {
                return Err(ReadError::Malformed(format!(
                    "more than {} rows in one column",
                    self.limit
                )));
            }
            cursor.last = vb.oid.clone();
            cursor.rows.push(vb);
        }
        Ok(())
    }

    /// The rows walked, column by column, for [`assemble`].
    pub fn into_columns(self) -> Vec<(Column, Vec<VarBind>)> {
        self.columns
            .into_iter()
            .map(|c| (c.column, c.rows))
            .collect()
    }

    fn open(&self) -> impl Iterator<Item = &ColumnCursor> {
        self.columns.iter().filter(|c| !c.done)
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

    /// A GETBULK answer as an agent lays it out: `reps` repetitions over the columns
    /// asked, each repetition the next OID of every column, from `table` (sorted).
    fn bulk(table: &[VarBind], asked: &[Oid], reps: usize) -> Vec<VarBind> {
        let mut cursors: Vec<Oid> = asked.to_vec();
        let mut out = Vec::new();
        for _ in 0..reps {
            for cursor in cursors.iter_mut() {
                let next = table.iter().find(|vb| vb.oid > *cursor);
                match next {
                    Some(vb) => {
                        *cursor = vb.oid.clone();
                        out.push(vb.clone());
                    }
                    None => out.push(VarBind::new(cursor.clone(), Value::EndOfMibView)),
                }
            }
        }
        out
    }

    fn table_of(rows: u32) -> Vec<VarBind> {
        let mut table: Vec<VarBind> = Column::ALL
            .iter()
            .flat_map(|&c| {
                (1..=rows).map(move |i| match c {
                    Column::Admin | Column::Oper => cell(c, i, Value::Integer(1)),
                    Column::HcInOctets | Column::HcOutOctets => {
                        cell(c, i, Value::Counter64(i as u64))
                    }
                    _ => cell(c, i, text(&format!("if{i}"))),
                })
            })
            .collect();
        // Something after ifXTable, as a real agent has.
        table.push(VarBind::new(
            Oid::from_slice(&[1, 3, 6, 1, 2, 1, 31, 1, 2, 1, 3, 0, 1]),
            Value::Integer(1),
        ));
        table.sort_by(|a, b| a.oid.cmp(&b.oid));
        table
    }

    fn walk_all(table: &[VarBind], reps: usize, trim: usize) -> (Vec<Interface>, usize) {
        let mut walk = ColumnWalk::new(&Column::ALL, 10_000);
        let mut requests = 0;
        while !walk.is_done() {
            let asked = walk.next_request();
            let mut answer = bulk(table, &asked, reps);
            answer.truncate(trim);
            walk.absorb(answer).unwrap();
            requests += 1;
            assert!(requests < 1_000);
        }
        (assemble(&walk.into_columns()).unwrap(), requests)
    }

    #[test]
    fn a_small_table_is_one_request_a_large_one_continues_per_column() {
        let (rows, requests) = walk_all(&table_of(4), 6, usize::MAX);
        assert_eq!((rows.len(), requests), (4, 1));
        assert_eq!(rows[3].name.as_deref(), Some("if4"));
        // 5 rows and the overshoot need exactly 6 repetitions.
        assert_eq!(walk_all(&table_of(5), 6, usize::MAX).1, 1);
        assert_eq!(walk_all(&table_of(6), 6, usize::MAX).1, 2);
        let (rows, requests) = walk_all(&table_of(60), 6, usize::MAX);
        assert_eq!((rows.len(), requests), (60, 11));
        assert!(rows.iter().all(|r| r.out_octets == Some(r.index as u64)));
        // An agent trimming every answer to 10 varbinds still yields the whole table.
        let (rows, _) = walk_all(&table_of(60), 6, 10);
        assert_eq!(rows.len(), 60);
        assert!(rows.iter().all(|r| r.alias.is_some() && r.admin.is_some()));
    }

    #[test]
    fn columns_of_different_lengths_end_on_their_own() {
        // ifAlias has rows 1..3 only; the others 1..8.
        let table: Vec<VarBind> = table_of(8)
            .into_iter()
            .filter(|vb| match vb.oid.strip_prefix(&Column::Alias.oid()) {
                Some(rest) => rest.arcs()[0] <= 3,
                None => true,
            })
            .collect();
        let (rows, requests) = walk_all(&table, 4, usize::MAX);
        assert_eq!(rows.len(), 8);
        assert_eq!(rows.iter().filter(|r| r.alias.is_some()).count(), 3);
        assert_eq!(requests, 3);
    }

    #[test]
    fn a_non_increasing_agent_is_refused_and_rows_are_bounded() {
        let mut walk = ColumnWalk::new(&[Column::Name, Column::Oper], 10_000);
        walk.absorb(vec![
            cell(Column::Name, 5, text("a")),
            cell(Column::Oper, 5, Value::Integer(1)),
        ])
        .unwrap();
        assert_eq!(
            walk.next_request(),
            vec![Column::Name.oid().child(5), Column::Oper.oid().child(5)]
        );
        // The same row again (an agent standing still) and a row going backwards.
        let again = walk.absorb(vec![cell(Column::Name, 5, text("a"))]);
        assert_eq!(
            again.unwrap_err().to_string(),
            "malformed answer: rows out of order"
        );
        let mut walk = ColumnWalk::new(&[Column::Name], 10_000);
        walk.absorb(vec![cell(Column::Name, 5, text("a"))]).unwrap();
        assert!(walk.absorb(vec![cell(Column::Name, 4, text("b"))]).is_err());

        let mut walk = ColumnWalk::new(&[Column::Name], 2);
        let error = walk
            .absorb((1..=3).map(|i| cell(Column::Name, i, text("x"))).collect())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed answer: more than 2 rows in one column"
        );
        // Exactly the limit is fine.
        let mut walk = ColumnWalk::new(&[Column::Name], 2);
        walk.absorb((1..=2).map(|i| cell(Column::Name, i, text("x"))).collect())
            .unwrap();
        walk.absorb(vec![cell(Column::Descr, 1, text("y"))])
            .unwrap();
        assert!(walk.is_done());
    }

    #[test]
    fn an_empty_answer_ends_the_walk() {
        let mut walk = ColumnWalk::new(&Column::ALL, 10_000);
        walk.absorb(vec![]).unwrap();
        assert!(walk.is_done());
        assert!(walk.next_request().is_empty());
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
