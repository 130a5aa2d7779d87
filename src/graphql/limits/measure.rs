//! Measuring one operation before it runs: its cost, its depth, its aliases, root fields
//! and directives, with fragments, inline fragments and variables resolved.
//!
//! The cost rule:
//! - every selected field costs 1;
//! - a field that returns a list costs 1 plus its items' selection times the number of
//!   items it can return:
//!   - the `nodes` and `edges` of a connection (a type named `…Connection`): the page
//!     size, `first` or `last` of the connection field (from literals or variables; at
//!     most [`MAX_PAGE`], [`DEFAULT_PAGE`] when neither is given); `totalCount` and
//!     `pageInfo` are not multiplied;
//!   - a list field with a list argument (`nodes(ids:)`): as many as that argument holds
//!     (at most [`MAX_NODES`]);
//!   - any other list of objects (`mitreSummary`, `impactedEntities`, a payload's
//!     `detections`): [`OTHER_LIST_SIZE`], an estimate, as their length depends on data;
//!   - a list of scalars or enums is one value: 1;
//! - introspection (`__schema`, `__type`, `__typename` and everything under them) costs
//!   1 per field, unmultiplied: its answer is bounded by the schema, which no client can
//!   grow, and needs no database;
//! - sibling fragments on different types are all counted, as if each applied, and so
//!   are selections under `@skip`/`@include`: the cost is the document's, whatever
//!   branch its variables choose.
//!
//! Depth counts fields, as GraphQL tools do: `{ viewer { email } }` is 2 deep.
//!
//! Aliases and directives are counted over the operation as its fragments expand: a
//! fragment spread twice counts twice, so a small document cannot hide a large number of
//! either; they are not multiplied by page sizes (the cost does that). Root fields are the
//! fields of the operation's own selection set, through fragments and inline fragments.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, FragmentDefinition, OperationDefinition, OperationType,
    Selection, SelectionSet, ServiceDocument, Type, TypeKind, TypeSystemDefinition,
};
// `async_graphql::Value` is the constant value; a document's values may hold variables.
use async_graphql::{Name, Positioned, Value as ConstValue, Variables};

use crate::graphql::node::MAX_NODES;
use crate::graphql::pagination::{DEFAULT_PAGE, MAX_PAGE};

/// The size counted for a list of objects whose length depends on data alone.
pub const OTHER_LIST_SIZE: u64 = 10;

/// The deepest nesting of selection sets (fields and fragments) the walk follows; deeper
/// documents are refused as too deep without measuring further.
pub const NESTING_CEILING: usize = 256;

/// What one operation measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measures {
    pub cost: u64,
    pub depth: usize,
    /// Directives in the operation, on fields, fragments and the operation itself.
    pub directives: usize,
    /// Fields asked under an alias.
    pub aliases: usize,
    /// Fields of the operation's root type it selects.
    pub root_fields: usize,
    /// Whether it asks `__schema` or `__type` anywhere.
    pub introspects: bool,
}

impl Measures {
    /// Two sibling selections together.
    fn beside(self, other: Measures) -> Measures {
        Measures {
            cost: self.cost.saturating_add(other.cost),
            depth: self.depth.max(other.depth),
            directives: self.directives.saturating_add(other.directives),
            aliases: self.aliases.saturating_add(other.aliases),
            root_fields: self.root_fields.saturating_add(other.root_fields),
            introspects: self.introspects || other.introspects,
        }
    }
}

/// Why a document cannot be measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmeasurable {
    /// Selections nest deeper than [`NESTING_CEILING`].
    TooDeep,
    /// This fragment spreads itself, directly or through others.
    Cycle(String),
}

/// What a field of the schema returns, as far as cost is concerned.
#[derive(Debug)]
struct FieldShape {
    /// The named type inside any list and non-null wrappers.
    type_name: String,
    list: bool,
    /// The first argument of a list type, whose length is the field's length.
    list_argument: Option<String>,
}

impl FieldShape {
    fn is_connection(&self) -> bool {
        !self.list && self.type_name.ends_with("Connection")
    }
}

/// The fields of every object and interface type of the schema, read once from its SDL.
#[derive(Debug)]
pub struct Shapes {
    fields: HashMap<String, HashMap<String, FieldShape>>,
    roots: [String; 3],
}

impl Shapes {
    /// Reads the schema's SDL (as `Schema::sdl` prints it).
    pub fn from_sdl(sdl: &str) -> Shapes {
        let mut shapes = Shapes {
            fields: HashMap::new(),
            roots: ["Query".into(), "Mutation".into(), "Subscription".into()],
        };
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            tracing::error!("the schema's own SDL does not parse: costs count 1 per field");
            return shapes;
        };
        shapes.read(document);
        shapes
    }

    fn read(&mut self, document: ServiceDocument) {
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    for (root, name) in self.roots.iter_mut().zip([
                        schema.query,
                        schema.mutation,
                        schema.subscription,
                    ]) {
                        if let Some(name) = name {
                            *root = name.node.to_string();
                        }
                    }
                }
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    let fields = match definition.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        _ => continue,
                    };
                    let fields = fields
                        .into_iter()
                        .map(|field| {
                            let field = field.node;
                            let (type_name, list) = named_type(&field.ty.node);
                            let list_argument = field
                                .arguments
                                .iter()
                                .find(|argument| named_type(&argument.node.ty.node).1)
                                .map(|argument| argument.node.name.node.to_string());
                            (
                                field.name.node.to_string(),
                                FieldShape { type_name, list, list_argument },
                            )
                        })
                        .collect();
                    self.fields.insert(definition.name.node.to_string(), fields);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
    }

    fn field(&self, on: &str, name: &str) -> Option<&FieldShape> {
        self.fields.get(on)?.get(name)
    }

    fn root(&self, ty: OperationType) -> &str {
        match ty {
            OperationType::Query => &self.roots[0],
            OperationType::Mutation => &self.roots[1],
            OperationType::Subscription => &self.roots[2],
        }
    }
}

/// The named type inside a type's wrappers, and whether it is a list.
fn named_type(ty: &Type) -> (String, bool) {
    match &ty.base {
        BaseType::Named(name) => (name.to_string(), false),
        BaseType::List(inner) => (named_type(inner).0, true),
    }
}

/// Measures `operation` of `document` with the request's `variables`.
pub fn measure(
    shapes: &Shapes,
    document: &ExecutableDocument,
    operation: &OperationDefinition,
    variables: &Variables,
) -> Result<Measures, Unmeasurable> {
    let mut values: HashMap<Name, ConstValue> = operation
        .variable_definitions
        .iter()
        .filter_map(|definition| {
            let definition = &definition.node;
            let default = definition.default_value.as_ref().map(|value| value.node.clone());
            Some((definition.name.node.clone(), default?))
        })
        .collect();
    values.extend(variables.iter().map(|(name, value)| (name.clone(), value.clone())));
    let mut walk = Walk {
        shapes,
        fragments: &document.fragments,
        variables: values,
        memo: HashMap::new(),
        open: HashSet::new(),
        nesting: 0,
    };
    let root = walk.set(&operation.selection_set.node, Some(shapes.root(operation.ty)), None)?;
    let root_fields = RootFields { fragments: &document.fragments, memo: HashMap::new() }
        .count(&operation.selection_set.node, 0);
    Ok(root.beside(Measures {
        directives: operation.directives.len(),
        root_fields,
        ..Measures::default()
    }))
}

/// Counts the fields of a root selection set, through fragments (each fragment's count
/// is kept, so spreads that fan out cost one count per fragment).
struct RootFields<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    memo: HashMap<&'a str, usize>,
}

impl<'a> RootFields<'a> {
    fn count(&mut self, set: &'a SelectionSet, nesting: usize) -> usize {
        // A cycle or a deeper nesting is refused by the measuring walk itself.
        if nesting > NESTING_CEILING {
            return 0;
        }
        set.items.iter().fold(0usize, |total, selection| {
            let here = match &selection.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(inline) => {
                    self.count(&inline.node.selection_set.node, nesting + 1)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match self.memo.get(name) {
                        Some(count) => *count,
                        None => {
                            // Marked first: a fragment that spreads itself counts 0 inside.
                            self.memo.insert(name, 0);
                            let count = self.fragments.get(name).map_or(0, |fragment| {
                                self.count(&fragment.node.selection_set.node, nesting + 1)
                            });
                            self.memo.insert(name, count);
                            count
                        }
                    }
                }
            };
            total.saturating_add(here)
        })
    }
}

struct Walk<'a> {
    shapes: &'a Shapes,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    variables: HashMap<Name, ConstValue>,
    /// Fragments measured already, by name and the page size they were spread under.
    memo: HashMap<(&'a str, Option<u64>), Measures>,
    /// Fragments being measured, to find cycles.
    open: HashSet<&'a str>,
    nesting: usize,
}

impl<'a> Walk<'a> {
    /// A selection set on the type `on` (`None`: unknown, or introspection). `page` is
    /// the page size when the set belongs to a connection field.
    fn set(
        &mut self,
        set: &'a SelectionSet,
        on: Option<&'a str>,
        page: Option<u64>,
    ) -> Result<Measures, Unmeasurable> {
        self.nesting += 1;
        if self.nesting > NESTING_CEILING {
            return Err(Unmeasurable::TooDeep);
        }
        let mut total = Measures::default();
        for selection in &set.items {
            let own =
                Measures { directives: selection.node.directives().len(), ..Measures::default() };
            let measures = match &selection.node {
                Selection::Field(field) => self.field(&field.node, on, page)?,
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let on = inline.type_condition.as_ref().map(|c| c.node.on.node.as_str()).or(on);
                    self.set(&inline.selection_set.node, on, page)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), page)?
                }
            };
            total = total.beside(own).beside(measures);
        }
        self.nesting -= 1;
        Ok(total)
    }

    fn fragment(&mut self, name: &'a str, page: Option<u64>) -> Result<Measures, Unmeasurable> {
        if let Some(measures) = self.memo.get(&(name, page)) {
            return Ok(*measures);
        }
        let Some(fragment) = self.fragments.get(name) else { return Ok(Measures::default()) };
        if !self.open.insert(name) {
            return Err(Unmeasurable::Cycle(name.to_owned()));
        }
        let fragment = &fragment.node;
        let on = fragment.type_condition.node.on.node.as_str();
        let measures = self.set(&fragment.selection_set.node, Some(on), page)?;
        let measures = measures
            .beside(Measures { directives: fragment.directives.len(), ..Measures::default() });
        self.open.remove(name);
        self.memo.insert((name, page), measures);
        Ok(measures)
    }

    fn field(
        &mut self,
        field: &'a Field,
        on: Option<&'a str>,
        page: Option<u64>,
    ) -> Result<Measures, Unmeasurable> {
        let name = field.name.node.as_str();
        let shape = if name.starts_with("__") {
            None
        } else {
            on.and_then(|on| self.shapes.field(on, name))
        };
        let (items, child_type, child_page) = match shape {
            None => (1, None, None),
            Some(shape) => {
                let items = match (shape.list, page, &shape.list_argument) {
                    (false, _, _) => 1,
                    (true, Some(page), _) => page,
                    (true, None, Some(argument)) => self.list_length(field, argument),
                    (true, None, None) => OTHER_LIST_SIZE,
                };
                let child_page = shape.is_connection().then(|| self.page_size(field));
                (items, Some(shape.type_name.as_str()), child_page)
            }
        };
        let children = self.set(&field.selection_set.node, child_type, child_page)?;
        Ok(Measures {
            cost: items.saturating_mul(children.cost).saturating_add(1),
            depth: children.depth + 1,
            aliases: children.aliases.saturating_add(usize::from(field.alias.is_some())),
            introspects: children.introspects || matches!(name, "__schema" | "__type"),
            ..children
        })
    }

    /// `first` or `last` (the larger when both are given), within what a page may hold.
    fn page_size(&self, field: &Field) -> u64 {
        let given = ["first", "last"]
            .into_iter()
            .filter_map(|name| match self.argument(field, name)? {
                ConstValue::Number(n) => n.as_i64(),
                _ => None,
            })
            .max();
        let max = u64::try_from(MAX_PAGE).unwrap_or(u64::MAX);
        match given {
            Some(n) => u64::try_from(n).unwrap_or(0).min(max),
            None => u64::try_from(DEFAULT_PAGE).unwrap_or(max),
        }
    }

    /// How many items a list argument holds (a single value counts as a list of one).
    fn list_length(&self, field: &Field, argument: &str) -> u64 {
        let length = match self.argument(field, argument) {
            Some(ConstValue::List(items)) => items.len(),
            Some(ConstValue::Null) | None => 0,
            Some(_) => 1,
        };
        u64::try_from(length.min(MAX_NODES)).unwrap_or(u64::MAX)
    }

    fn argument(&self, field: &Field, name: &str) -> Option<ConstValue> {
        field.get_argument(name)?.node.clone().into_const_with(self.variable()).ok()
    }

    /// Looks a variable up, for `into_const_with`.
    fn variable(&self) -> impl Fn(Name) -> Result<ConstValue, ()> + '_ {
        |name| self.variables.get(&name).cloned().ok_or(())
    }
}
