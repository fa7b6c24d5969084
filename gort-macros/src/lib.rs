//! `#[gort::main]`: run `fn main` as gort's main goroutine.
//!
//! This crate is re-exported by `gort`; depend on `gort` and write `#[gort::main]`.

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// Runs the annotated `fn main` as the main goroutine (goroutine 1) of the gort runtime.
///
/// ```ignore
/// #[gort::main]
/// fn main() {
///     let h = gort::go(|| 40 + 2);
///     assert_eq!(h.join().unwrap(), 42);
/// }
/// ```
///
/// expands to `fn main() { ::gort::run(move || { ... }) }`. A return type is kept:
/// `fn main() -> Result<(), E>` returns what the main goroutine returned. As in Go,
/// returning from `main` ends the process, and with it every other goroutine.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("#[gort::main] takes no arguments; configure with gort::Config");
    }
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let body_at = match tokens
        .iter()
        .rposition(|t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace))
    {
        Some(i) if i + 1 == tokens.len() => i,
        _ => return compile_error("#[gort::main] must be placed on a function with a body"),
    };
    let sig = &tokens[..body_at];
    let is_fn = sig
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"));
    if !is_fn {
        return compile_error("#[gort::main] must be placed on a function");
    }
    if sig
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async"))
    {
        return compile_error("#[gort::main] functions are plain blocking code: remove `async`");
    }
    // The return type, if any: the tokens after `->` in the signature.
    let ret: Vec<TokenTree> = sig
        .windows(2)
        .position(|w| {
            matches!((&w[0], &w[1]), (TokenTree::Punct(a), TokenTree::Punct(b))
                if a.as_char() == '-' && b.as_char() == '>')
        })
        .map(|i| sig[i..].to_vec())
        .unwrap_or_default();
    let body = tokens[body_at].clone();

    // ::gort::run(move || -> R { body })
    let mut closure: Vec<TokenTree> = vec![
        Ident::new("move", Span::call_site()).into(),
        Punct::new('|', Spacing::Joint).into(),
        Punct::new('|', Spacing::Alone).into(),
    ];
    closure.extend(ret);
    closure.push(body);
    let mut call: Vec<TokenTree> = vec![
        Punct::new(':', Spacing::Joint).into(),
        Punct::new(':', Spacing::Alone).into(),
        Ident::new("gort", Span::call_site()).into(),
        Punct::new(':', Spacing::Joint).into(),
        Punct::new(':', Spacing::Alone).into(),
        Ident::new("run", Span::call_site()).into(),
    ];
    call.push(Group::new(Delimiter::Parenthesis, closure.into_iter().collect()).into());

    let mut out: Vec<TokenTree> = sig.to_vec();
    out.push(Group::new(Delimiter::Brace, call.into_iter().collect()).into());
    out.into_iter().collect()
}

fn compile_error(msg: &str) -> TokenStream {
    format!("compile_error!({msg:?});").parse().unwrap()
}
