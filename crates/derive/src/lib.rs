//! `#[derive(ParamDocs)]` for a model's `[model.params]` struct and its choice enums.
//!
//! The doc comments on the struct's fields are the one description of each param: the derive
//! copies them, the field's config name (serde's `rename` / `rename_all` applied) and its Rust
//! type into `longtail_core::ParamDocs`, which `longtail models NAME` prints next to the
//! defaults. A field without a doc comment is a compile error, so a new param cannot ship
//! undocumented. On a unit-variant enum the derive lists its config words with each variant's
//! doc comment; a field of that type then shows its choices.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{quote, ToTokens};
use syn::{parse_macro_input, Attribute, Data, DeriveInput, Error, Expr, Fields, Lit, Meta};

#[proc_macro_derive(ParamDocs)]
pub fn derive_param_docs(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let rename_all = serde_string(&input.attrs, "rename_all")?;
    let body = match &input.data {
        Data::Struct(s) => {
            let Fields::Named(fields) = &s.fields else {
                return Err(Error::new_spanned(
                    &input.ident,
                    "ParamDocs: a params struct needs named fields (one per config key)",
                ));
            };
            let mut items = Vec::new();
            for f in &fields.named {
                if serde_flag(&f.attrs, "skip")? || serde_flag(&f.attrs, "flatten")? {
                    return Err(Error::new_spanned(
                        f,
                        "ParamDocs: skipped or flattened fields are not supported",
                    ));
                }
                let ident = f.ident.as_ref().expect("named field");
                let key = match serde_string(&f.attrs, "rename")? {
                    Some(r) => r,
                    None => renamed(&unraw(&ident.to_string()), rename_all.as_deref(), ident)?,
                };
                let doc = doc_text(&f.attrs);
                if doc.is_empty() {
                    return Err(Error::new_spanned(
                        ident,
                        format!(
                            "ParamDocs: param `{key}` has no doc comment; `longtail models` \
                             prints it, so say what it does (`/// ...`)"
                        ),
                    ));
                }
                let ty = &f.ty;
                let ty_text = type_text(ty);
                items.push(quote! {
                    ::longtail_core::params::ParamDoc {
                        name: #key,
                        ty: #ty_text,
                        doc: #doc,
                        choices: <#ty as ::longtail_core::params::ParamDocs>::choices(),
                    }
                });
            }
            quote! {
                fn fields() -> ::std::vec::Vec<::longtail_core::params::ParamDoc> {
                    ::std::vec![#(#items),*]
                }
            }
        }
        Data::Enum(e) => {
            let mut items = Vec::new();
            for v in &e.variants {
                if !matches!(v.fields, Fields::Unit) {
                    return Err(Error::new_spanned(
                        v,
                        "ParamDocs: a choice enum has unit variants only (each is one config word)",
                    ));
                }
                // serde spells a variant as written unless `rename_all` says otherwise.
                let word = match (serde_string(&v.attrs, "rename")?, rename_all.as_deref()) {
                    (Some(r), _) => r,
                    (None, None) => v.ident.to_string(),
                    (None, rule) => renamed(&variant_snake(&v.ident.to_string()), rule, &v.ident)?,
                };
                let doc = doc_text(&v.attrs);
                items.push(quote! {
                    ::longtail_core::params::ParamChoice { word: #word, doc: #doc }
                });
            }
            quote! {
                fn choices() -> ::std::vec::Vec<::longtail_core::params::ParamChoice> {
                    ::std::vec![#(#items),*]
                }
            }
        }
        Data::Union(_) => {
            return Err(Error::new_spanned(
                &input.ident,
                "ParamDocs: unions are not params",
            ))
        }
    };
    Ok(quote! {
        impl #impl_generics ::longtail_core::params::ParamDocs for #name #ty_generics #where_clause {
            #body
        }
    })
}

/// The doc comment's lines, trimmed and joined into one paragraph (blank lines kept as breaks).
fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs {
        if !a.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &a.meta {
            if let Expr::Lit(lit) = &nv.value {
                if let Lit::Str(s) = &lit.lit {
                    lines.push(s.value().trim().to_string());
                }
            }
        }
    }
    let mut out = String::new();
    for l in lines {
        if l.is_empty() {
            if !out.ends_with('\n') && !out.is_empty() {
                out.push('\n');
            }
        } else {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push(' ');
            }
            out.push_str(&l);
        }
    }
    out.trim().to_string()
}

/// Every item of the `#[serde(...)]` attributes, in order: its name and, for `key = "text"`, the
/// text (other values and parenthesised arguments are read past).
fn serde_items(attrs: &[Attribute]) -> syn::Result<Vec<(String, Option<String>)>> {
    let mut items = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        a.parse_nested_meta(|meta| {
            let name = meta.path.to_token_stream().to_string();
            let mut text = None;
            if meta.input.peek(syn::Token![=]) {
                if let Expr::Lit(lit) = meta.value()?.parse::<Expr>()? {
                    if let Lit::Str(s) = lit.lit {
                        text = Some(s.value());
                    }
                }
            } else if meta.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in meta.input);
                let _: proc_macro2::TokenStream = content.parse()?;
            }
            items.push((name, text));
            Ok(())
        })?;
    }
    Ok(items)
}

/// `#[serde(key = "value")]` among the attributes (the last one wins, as in serde).
fn serde_string(attrs: &[Attribute], key: &str) -> syn::Result<Option<String>> {
    Ok(serde_items(attrs)?
        .into_iter()
        .rev()
        .filter(|(name, _)| name == key)
        .find_map(|(_, text)| text))
}

/// Whether a bare `#[serde(flag)]` is present.
fn serde_flag(attrs: &[Attribute], flag: &str) -> syn::Result<bool> {
    Ok(serde_items(attrs)?.iter().any(|(name, _)| name == flag))
}

fn unraw(s: &str) -> String {
    s.strip_prefix("r#").unwrap_or(s).to_string()
}

/// `SharedHead` -> `shared_head`.
fn variant_snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A snake_case name under serde's `rename_all` rule (the rules params use; others are an error
/// rather than a silently wrong key).
fn renamed(snake: &str, rule: Option<&str>, span: &impl ToTokens) -> syn::Result<String> {
    Ok(match rule {
        None | Some("snake_case") => snake.to_string(),
        Some("lowercase") => snake.replace('_', ""),
        Some("kebab-case") => snake.replace('_', "-"),
        Some("SCREAMING_SNAKE_CASE") => snake.to_uppercase(),
        Some("UPPERCASE") => snake.replace('_', "").to_uppercase(),
        Some(other) => {
            return Err(Error::new(
                span_of(span),
                format!("ParamDocs: serde rename_all = \"{other}\" is not supported"),
            ))
        }
    })
}

fn span_of(t: &impl ToTokens) -> Span {
    t.to_token_stream()
        .into_iter()
        .next()
        .map(|t| t.span())
        .unwrap_or_else(Span::call_site)
}

/// The field's type as written, without the spaces the token printer adds (`Option<Vec<i64>>`).
fn type_text(ty: &syn::Type) -> String {
    let s = ty.to_token_stream().to_string();
    let mut out = String::new();
    for part in s.split_whitespace() {
        let prev = out.chars().last();
        let glue = matches!(prev, Some('<' | ':' | '&' | '(' | '['))
            || part.starts_with(['<', '>', ':', ',', ')', ']']);
        if !out.is_empty() && !glue {
            out.push(' ');
        }
        out.push_str(part);
    }
    out.replace(",", ", ").replace(",  ", ", ")
}
