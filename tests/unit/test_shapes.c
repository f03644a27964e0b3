/* test_shapes.c - shape inference with symbolic dimensions, and every shape
 * error the elaborator reports (checked by the words users will read). */
#include <criterion/criterion.h>

#include "arena.h"
#include "helpers.h"

/* A model whose encoder body is `body` (d = 4, tokens [b, n]); the decoder
 * is a minimal valid one. */
static Model *model_with_after(Arena *a, const char *body, const char *after, char **diags, int *errors)
{
    char text[4096];
    snprintf(text, sizeof text,
             "model t {\n"
             "  vocab src = [\"<eos>\", \"a\", \"b\"]\n"
             "  vocab tgt = [\"<eos>\", \"x\"]\n"
             "  const d = 4\n"
             "  encoder(x: tokens<src>[b, n]) {\n%s\n  }\n"
             "  decoder(y: tokens<tgt>[b, m], memory: [b, n, d]) {\n"
             "    return linear(embed(y, d), len(tgt))\n"
             "  }\n"
             "}\n", body);
    return compile_capture_after(a, "t.vam", text, after, diags, errors);
}

static Model *model_with(Arena *a, const char *body, char **diags, int *errors)
{
    return model_with_after(a, body, NULL, diags, errors);
}

static const char *out_shape(Arena *a, Model *m)
{
    return shape_str(a, m, &m->enc.nodes[m->enc.output].shape);
}

Test(shapes, embedding_gives_batch_seq_width)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    Model *m = model_with(&a, "return embed(x, d)", &diags, &errors);
    cr_assert(m, "%s", diags);
    cr_assert_str_eq(out_shape(&a, m), "[b, n, 4]");
    cr_assert_eq(m->nsyms, 4);   /* b, n, m, and t: the derived decoder step's position */
    cr_assert_str_eq(m->syms[0].name, "b");
    cr_assert_eq(m->syms[3].role, SYM_STEP_POS);
    free(diags);
    arena_free(&a);
}

Test(shapes, broadcasting_with_symbolic_dims)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    /* [b, n, 4] + [n, 4] -> [b, n, 4]; attention scores [b, n, n] */
    Model *m = model_with(&a,
        "h = embed(x, d) + position(n, d)\n"
        "s = h @ transpose(h)\n"
        "return softmax(s) @ h", &diags, &errors);
    cr_assert(m, "%s", diags);
    cr_assert_str_eq(out_shape(&a, m), "[b, n, 4]");
    free(diags);
    arena_free(&a);
}

Test(shapes, multi_head_split_and_merge)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    /* as elaborated: fusion cancels merge_heads' transpose against split_heads' */
    Model *m = model_with_after(&a,
        "h = split_heads(embed(x, d), 2)\n"
        "return merge_heads(h)", "dce", &diags, &errors);
    cr_assert(m, "%s", diags);
    cr_assert_str_eq(out_shape(&a, m), "[b, n, 4]");
    /* the split itself is [b, 2, n, 2] */
    bool seen = false;
    for (int i = 0; i < m->enc.n; i++)
        seen |= !strcmp(shape_str(&a, m, &m->enc.nodes[i].shape), "[b, 2, n, 2]");
    cr_assert(seen);
    free(diags);
    arena_free(&a);
}

Test(shapes, reductions_keep_the_axis)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    Model *m = model_with(&a, "h = embed(x, d)\nreturn h - mean(h, axis: 1)", &diags, &errors);
    cr_assert(m, "%s", diags);
    bool seen = false;
    for (int i = 0; i < m->enc.n; i++)
        seen |= m->enc.nodes[i].op == OP_MEAN && !strcmp(shape_str(&a, m, &m->enc.nodes[i].shape), "[b, 1, 4]");
    cr_assert(seen);
    free(diags);
    arena_free(&a);
}

Test(shapes, masks)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    Model *m = model_with(&a, "h = embed(x, d)\nmask = padding_mask(h) + causal_mask(n)\nreturn h + reshape(sum(sum(sum(mask, axis: -1), axis: -2), axis: 1), [b, 1, 1])", &diags, &errors);
    cr_assert(m, "%s", diags);
    bool pad = false, causal = false;
    for (int i = 0; i < m->enc.n; i++) {
        const char *s = shape_str(&a, m, &m->enc.nodes[i].shape);
        pad |= m->enc.nodes[i].op == OP_PAD_MASK && !strcmp(s, "[b, 1, 1, n]");
        causal |= m->enc.nodes[i].op == OP_CAUSAL_MASK && !strcmp(s, "[n, n]");
    }
    cr_assert(pad && causal);
    free(diags);
    arena_free(&a);
}

/* An error case: compile fails and the diagnostics hold every fragment. */
static void expect_error(const char *body, const char *const *fragments)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    Model *m = model_with(&a, body, &diags, &errors);
    cr_assert_null(m, "compiled: %s", body);
    cr_assert_gt(errors, 0);
    for (int i = 0; fragments[i]; i++)
        cr_assert(strstr(diags, fragments[i]), "missing \"%s\" in:\n%s", fragments[i], diags);
    free(diags);
    arena_free(&a);
}

Test(shape_errors, matmul_inner_dims)
{
    expect_error("h = embed(x, d)\nreturn h @ embed(x, 3) as e2",
                 (const char *[]){ "t.vam:7:10: error: shape mismatch in '@': [b, n, 4] @ [b, n, 3]",
                                   "note: the left operand [b, n, 4] comes from here",
                                   "note: the right operand [b, n, 3] comes from here",
                                   "t.vam:7:12: note: the right operand", NULL });
}

Test(shape_errors, broadcast)
{
    expect_error("return embed(x, d) + embed(x, 3) as e2",
                 (const char *[]){ "shapes [b, n, 4] and [b, n, 3] do not broadcast for '+' (axis 2 differs)",
                                   "note: the left operand", NULL });
}

Test(shape_errors, symbolic_dims_never_equal_constants)
{
    expect_error("return embed(x, d) + reshape(arange(4), [4, 1])",
                 (const char *[]){ "shapes [b, n, 4] and [4, 1] do not broadcast", NULL });
}

Test(shape_errors, pattern_mismatch_names_the_binding)
{
    expect_error("return layer_norm(embed(x, d)) @ reshape(arange(12), [3, 4])",
                 (const char *[]){ "shape mismatch in '@': [b, n, 4] @ [3, 4]", NULL });
    expect_error("return cross_attention(embed(x, d), embed(x, 2) as e2)",
                 (const char *[]){ "argument 'memory' of 'cross_attention' has shape [b, n, 2], but its pattern [b, t, d] needs d = 4",
                                   "called from here", NULL });
}

Test(shape_errors, rank)
{
    expect_error("return arange(n) @ arange(n)",
                 (const char *[]){ "'@' needs tensors of rank 2 or more, got [n] and [n]", NULL });
    expect_error("return split_heads(arange(n), 2)",
                 (const char *[]){ "has shape [n], but its pattern [b, s, d] needs rank 3", NULL });
}

Test(shape_errors, reshape_count)
{
    expect_error("return reshape(embed(x, d), [b, n, 5])",
                 (const char *[]){ "cannot reshape [b, n, 4] to [b, n, 5]: the number of elements differs", NULL });
}

/* Reshapes that keep the count, moving symbols around, are allowed. */
Test(shapes, reshape_moves_symbolic_dims)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    Model *m = model_with(&a, "h = reshape(embed(x, d), [b, 4, n])\nreturn reshape(h, [b, n, d])", &diags, &errors);
    cr_assert(m, "%s", diags);
    bool seen = false;
    for (int i = 0; i < m->enc.n; i++)
        seen |= m->enc.nodes[i].op == OP_RESHAPE && !strcmp(shape_str(&a, m, &m->enc.nodes[i].shape), "[b, 4, n]");
    cr_assert(seen);
    cr_assert_str_eq(out_shape(&a, m), "[b, n, 4]");
    free(diags);
    arena_free(&a);
}

Test(shape_errors, symbolic_arithmetic_and_weights)
{
    expect_error("return reshape(embed(x, d), [b * n, 4])",
                 (const char *[]){ "arithmetic on the symbolic dimension 'b' is not supported", NULL });
    expect_error("return linear(embed(x, d), n)",
                 (const char *[]){ "argument 'o' of 'linear' must be an integer, got a symbolic dimension", NULL });
}

Test(shape_errors, axis_and_sizes)
{
    expect_error("return sum(embed(x, d), axis: 3)",
                 (const char *[]){ "axis 3 is out of range for a tensor of rank 3", NULL });
    expect_error("return linear(embed(x, d), 1000000000000)",
                 (const char *[]){ "is 1000000000000, outside 1..2147483648", NULL });
}

Test(shape_errors, decoder_output_must_cover_the_vocabulary)
{
    Arena a = { 0 };
    char *diags;
    int errors;
    const char *text =
        "model t {\n"
        "  vocab src = [\"<eos>\", \"a\"]\n"
        "  vocab tgt = [\"<eos>\", \"x\", \"y\"]\n"
        "  encoder(x: tokens<src>[b, n]) { return embed(x, 4) }\n"
        "  decoder(y: tokens<tgt>[b, m], memory: [b, n, 4]) { return embed(y, 4) }\n"
        "}\n";
    cr_assert_null(compile_capture(&a, "t.vam", text, &diags, &errors));
    cr_assert(strstr(diags, "the decoder must return scores over the target vocabulary, shape [b, m, 3], not [b, m, 4]"), "%s", diags);
    free(diags);
    arena_free(&a);
}
