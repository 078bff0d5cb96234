//! The method table: every reduction method the kernel offers and the facts other layers need
//! about it (output dtype, value of an empty window, whether partial states compose). One row per
//! method; the operators that compute it live in `ops` and `mode`. Depends on no other module.

/// A reduction method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Mean,
    Max,
    Min,
    Sum,
    Nearest,
    /// Majority: see `crate::mode`.
    Mode,
}

/// How the output dtype follows from the source dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputDtype {
    /// The source dtype (integer means round half to even from the exact sum).
    Source,
    /// numpy's sum dtype: `int64`/`uint64` for integers, the source dtype for floats.
    Sum,
}

/// What a window with no valid cell reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyValue {
    /// The fill value (NaN for floats without one).
    Fill,
    /// Zero, as `numpy.nansum` of nothing.
    Zero,
}

/// One row of the method table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    pub method: Method,
    pub name: &'static str,
    pub output: OutputDtype,
    pub empty: EmptyValue,
    /// A coarse level follows exactly from fixed-size partial states of the finer one (sum and
    /// count, running extreme, first cell). `mode` is not: its state is a histogram per cell
    /// that grows with the number of distinct values.
    pub decomposable: bool,
}

const fn row(
    method: Method,
    name: &'static str,
    output: OutputDtype,
    empty: EmptyValue,
    decomposable: bool,
) -> MethodInfo {
    MethodInfo {
        method,
        name,
        output,
        empty,
        decomposable,
    }
}

/// Every method, in the order `METHODS` reports them.
pub const TABLE: [MethodInfo; 6] = [
    row(
        Method::Mean,
        "mean",
        OutputDtype::Source,
        EmptyValue::Fill,
        true,
    ),
    row(
        Method::Max,
        "max",
        OutputDtype::Source,
        EmptyValue::Fill,
        true,
    ),
    row(
        Method::Min,
        "min",
        OutputDtype::Source,
        EmptyValue::Fill,
        true,
    ),
    row(Method::Sum, "sum", OutputDtype::Sum, EmptyValue::Zero, true),
    row(
        Method::Nearest,
        "nearest",
        OutputDtype::Source,
        EmptyValue::Fill,
        true,
    ),
    row(
        Method::Mode,
        "mode",
        OutputDtype::Source,
        EmptyValue::Fill,
        false,
    ),
];

/// Names accepted as `method`, in table order.
pub const METHODS: [&str; 6] = [
    TABLE[0].name,
    TABLE[1].name,
    TABLE[2].name,
    TABLE[3].name,
    TABLE[4].name,
    TABLE[5].name,
];

impl Method {
    /// The method called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Method> {
        TABLE.iter().find(|r| r.name == name).map(|r| r.method)
    }

    /// This method's row of [`TABLE`].
    pub fn info(self) -> &'static MethodInfo {
        TABLE
            .iter()
            .find(|r| r.method == self)
            .expect("every method has a row")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_rows_are_unique() {
        for (i, r) in TABLE.iter().enumerate() {
            assert_eq!(METHODS[i], r.name);
            assert_eq!(Method::from_name(r.name), Some(r.method));
            assert_eq!(r.method.info(), r);
            assert_eq!(TABLE.iter().filter(|o| o.method == r.method).count(), 1);
        }
        assert_eq!(Method::from_name("median"), None);
    }
}
