//! The scripts of the differential suite: each runs under real bash and under
//! `wasmbuild sh`, and their stdout and exit status must agree. Every item of issue 3
//! (semantics, command lookup, session) has at least one case. Scripts use only builtins
//! and common coreutils, and never print host paths (bash runs in a temp dir, wasmbuild
//! in /codebuild/output/src).

pub struct Case {
    pub name: &'static str,
    pub script: &'static str,
    /// Files created in the source directory first; scripts (`#!` or `.sh`) are executable.
    pub files: &'static [(&'static str, &'static str)],
    /// Run as `sh FILE ARGS…` instead of `sh -c SCRIPT`.
    pub from_file: bool,
    pub args: &'static [&'static str],
}

impl Case {
    const fn new(name: &'static str, script: &'static str) -> Case {
        Case {
            name,
            script,
            files: &[],
            from_file: false,
            args: &[],
        }
    }

    const fn files(self, files: &'static [(&'static str, &'static str)]) -> Case {
        Case { files, ..self }
    }

    const fn file(self, args: &'static [&'static str]) -> Case {
        Case {
            from_file: true,
            args,
            ..self
        }
    }
}

const TREE: &[(&str, &str)] = &[
    ("a.txt", "alpha\n"),
    ("b.txt", "beta\nbeta2\n"),
    ("c.md", "# c\n"),
    (".hidden.txt", "h\n"),
    ("d/x.txt", "x\n"),
    ("d/y.log", "y\n"),
];

pub const CASES: &[Case] = &[
    // Found by the buildspec fuzzer: text beyond ASCII outside quotes crashed the shell.
    Case::new(
        "non_ascii_words",
        "echo héllo wörld ✓ 😀; x=naïve; echo \"$x\"; case é in é) echo matched;; esac",
    ),
    // ── simple commands, prefix assignments, lists ──
    Case::new(
        "prefix_assignment_scopes_to_one_program",
        r#"X=one printenv X; echo "[${X-unset}]""#,
    ),
    Case::new(
        "prefix_assignment_scopes_to_a_function",
        r#"f() { echo "in f: $X"; }; X=two f; echo "after: ${X-unset}""#,
    ),
    Case::new(
        "prefix_ifs_for_read_only",
        r#"IFS=: read a b <<< "1:2"; echo "$a $b"; x="p q"; set -- $x; echo $#"#,
    ),
    Case::new(
        "and_or_lists_and_status",
        "true && echo a; false && echo b; false || echo c; true || echo d; echo $?",
    ),
    Case::new("negated_pipelines", "! false; echo $?; ! true; echo $?; ! false | false; echo $?"),
    Case::new("semicolon_lists_run_in_order", "echo 1; echo 2 ; echo 3"),
    // ── pipelines ──
    Case::new(
        "pipeline_status_is_the_last_stage",
        "false | true; echo $?; true | false; echo $?",
    ),
    Case::new("pipeline_streams_a_large_output", "seq 200000 | wc -l"),
    Case::new("pipeline_with_early_exit_reader", "yes | head -n 3"),
    Case::new("pipeline_stages_are_subshells", "x=1; echo 2 | read x; echo $x"),
    Case::new(
        "pipeline_into_while_read",
        "printf 'a\\nb\\nc\\n' | while read l; do echo \"<$l>\"; done",
    ),
    Case::new("pipeline_of_builtins_and_programs", "echo hello | tr l L | cat"),
    Case::new("pipefail_reports_a_failed_stage", "set -o pipefail; false | true; echo $?"),
    // ── subshells and groups ──
    Case::new(
        "subshell_keeps_cd_and_variables_to_itself",
        "mkdir d; touch here; x=1; (cd d; x=2; [ -e here ] || echo inner-moved; echo $x); [ -e here ] && echo outer-stayed; echo $x",
    ),
    Case::new(
        "brace_group_shares_state",
        "mkdir d; x=1; { x=2; cd d; }; echo $x; [ -e ../here ] || echo moved",
    ),
    Case::new("subshell_exit_status", "(exit 3); echo $?; (false); echo $?"),
    // ── compound commands ──
    Case::new(
        "if_elif_else",
        "for v in 1 2 3; do if [ $v = 1 ]; then echo one; elif [ $v = 2 ]; then echo two; else echo other; fi; done",
    ),
    Case::new(
        "for_over_words_and_positionals",
        "for w in a 'b c' d; do echo \"[$w]\"; done; set -- x y; for p; do echo $p; done",
    ),
    Case::new(
        "while_and_until_loops",
        "i=0; while [ $i -lt 3 ]; do echo w$i; i=$((i+1)); done; until [ $i -eq 0 ]; do i=$((i-1)); done; echo $i",
    ),
    Case::new(
        "break_and_continue_levels",
        "for i in 1 2 3; do for j in a b c; do [ $j = b ] && continue; [ $i = 2 ] && break 2; echo $i$j; done; done; echo end",
    ),
    Case::new(
        "case_patterns_alternatives_and_fallthrough",
        "for f in a.txt B.MD x; do case $f in *.txt) echo text;; *.md|*.MD) echo markdown;; *) echo other;; esac; done; case y in y) echo y;& z) echo z;; esac",
    ),
    Case::new(
        "case_with_quoted_and_class_patterns",
        "case '*' in \"*\") echo star;; esac; case 5 in [0-9]) echo digit;; esac; case ab in a?) echo q;; esac",
    ),
    Case::new(
        "functions_local_and_return",
        "f() { local x=in; echo $x; return 3; }; x=out; f; echo $? $x",
    ),
    Case::new(
        "function_positionals_are_restored",
        "set -- a b; f() { echo $# $1; shift; echo $1; }; f x y z; echo $# $1",
    ),
    Case::new(
        "recursive_function",
        "fact() { if [ $1 -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(( $1 - 1 ))) )); fi; }; fact 6",
    ),
    Case::new(
        "local_is_dynamically_scoped",
        "f() { local v=f; g; }; g() { echo g-sees-$v; }; v=global; f; echo $v",
    ),
    Case::new("arithmetic_for_loop", "for ((i=0; i<5; i+=2)); do echo $i; done"),
    // ── redirections ──
    Case::new(
        "output_append_and_input_redirections",
        "echo a > f; echo b >> f; cat f; wc -l < f",
    ),
    Case::new(
        "stderr_to_stdout_and_to_dev_null",
        "{ echo out; echo err >&2; } 2>&1 | sort; echo hidden 2>/dev/null >&2; cat missing 2>/dev/null; echo $?",
    ),
    Case::new(
        "redirection_order_matters",
        "{ echo o; echo e >&2; } 2>&1 >f | cat; cat f",
    ),
    Case::new(
        "both_streams_to_a_file",
        "{ echo a; echo b >&2; } &> f; cat f; { echo c >&2; } &>> f; cat f",
    ),
    Case::new(
        "here_documents",
        "x=val\ncat <<EOF\nexpanded $x $((1+1))\n\\$x literal\nEOF\ncat <<'EOF'\nquoted $x\nEOF\ncat <<-EOF\n\tstripped\n\tEOF\n",
    ),
    Case::new("here_string", "cat <<< 'one two'; read a b <<< \"x y z\"; echo $b"),
    Case::new(
        "failed_redirection_skips_the_command",
        "echo x > nodir/f; echo $?; cat < nofile; echo $?",
    ),
    Case::new(
        "exec_opens_and_closes_descriptors",
        "exec 3> f3; echo three >&3; exec 3>&-; cat f3",
    ),
    Case::new("redirection_on_compound_command", "for i in 1 2; do echo $i; done > f; cat f"),
    // ── parameter expansion ──
    Case::new(
        "default_alternative_and_assign",
        "unset u; e=; echo [${u:-d1}] [${u-d2}] [${e:-d3}] [${e-d4}] [${u:+a}] [${e+b}]; echo ${u:=set}; echo $u",
    ),
    Case::new(
        "error_if_unset",
        "x=ok; echo ${x:?fine}; echo ${nope:?is not set}; echo unreachable",
    ),
    Case::new(
        "length_and_pattern_removal",
        "p=dir/sub/file.tar.gz; echo ${#p} ${p%.*} ${p%%.*} ${p#*/} ${p##*/}",
    ),
    Case::new(
        "replacement",
        "x=a-b-c; echo ${x/-/_} ${x//-/_} ${x/#a/A} ${x/%c/C} ${x//[ab]/}",
    ),
    Case::new("substring", "x=abcdefg; echo ${x:2} ${x:1:3} ${x: -3} ${x:2:-2}"),
    Case::new(
        "quoted_patterns_are_literal",
        "x='a*b*c'; echo \"${x%\"*\"*}\" \"${x%%\"*\"*}\" ${x#*\\*}",
    ),
    Case::new("case_conversion_and_indirection", "x=hello; echo ${x^} ${x^^}; y=x; echo ${!y}"),
    // ── command substitution ──
    Case::new(
        "command_substitution_quoting",
        r#"echo "$(echo "a   b")"; echo $(echo "a   b"); x="$(printf '%s' "it's")"; echo "$x"; echo "$(echo "$(echo deep)")""#,
    ),
    Case::new(
        "backticks",
        "echo `echo hi` \"`echo 'a  b'`\"; echo `echo \\`echo nested\\``",
    ),
    Case::new(
        "substitution_strips_trailing_newlines",
        "x=$(printf 'a\\n\\n'); echo \"[$x]\"; y=$(printf '\\n\\nb'); echo \"[$y]\"",
    ),
    Case::new(
        "substitution_status_and_subshell",
        "x=$(exit 3); echo $?; v=1; y=$(v=2; echo $v); echo $v $y",
    ),
    // ── arithmetic ──
    Case::new(
        "arithmetic_expansion",
        "a=7; echo $((a + 2 * 3)) $(( (a+2) * 3 )) $((a / 2)) $((a % 4)) $((2 ** 8)) $((-a)) $((a > 3 ? 1 : 0))",
    ),
    Case::new(
        "arithmetic_assignment_and_bases",
        "i=1; ((i++)); ((i += 5)); echo $i $((0x1f)) $((017)) $((2#1010)); b=i; echo $((b * 2))",
    ),
    Case::new("arithmetic_error_ends_the_script", "echo before; echo $((1 / 0)); echo after"),
    Case::new("arithmetic_command_status", "(( 0 )); echo $?; (( 5 )); echo $?; let x=2+3; echo $x"),
    // ── tilde, splitting, globbing, quotes ──
    Case::new(
        "tilde_expansion",
        "HOME=/home/u; echo ~ ~/x \"~\" '~'; p=~/bin:~/lib; echo $p",
    ),
    Case::new(
        "ifs_field_splitting",
        "n() { echo $#; }; x='  a   b  '; n $x; n \"$x\"; IFS=:; y='a::b:'; n $y; IFS=' :'; z=' a : b '; n $z; IFS=; n $x",
    ),
    Case::new(
        "empty_quoted_strings_make_fields",
        "n() { echo $#; }; e=''; s=' '; n \"\" $e; n \"$e\"; n \"\"$s; n $s\"\"",
    ),
    Case::new(
        "positional_parameters",
        "set -- a 'b c' d; echo $# $1 $3 \"${2}\" ${4-none}; n() { echo $#; }; n \"$@\"; n $@; n \"$*\"; IFS=,; echo \"$*\"",
    ),
    Case::new(
        "empty_at_expands_to_nothing",
        "set --; n() { echo $#; }; n \"$@\"; n \"$@\" x; n \"$*\"; for a in \"$@\"; do echo never; done; echo done",
    ),
    Case::new(
        "special_parameters",
        "true; echo $?; false; echo $?; [ -n \"$$\" ] && echo pid; [ \"$$\" = \"$(echo $$)\" ] && echo same-pid-in-subshell",
    ),
    Case::new(
        "globbing_is_sorted_and_literal_when_unmatched",
        "echo *.txt; echo *.none; echo '*.txt' \"*.md\"; echo [ab].*; echo d/*; echo */; echo .h*",
    )
    .files(TREE),
    Case::new(
        "globbing_through_variables_and_noglob",
        "p='*.md'; echo $p \"$p\"; set -f; echo *.md; set +f; for f in d/*.txt; do cat $f; done",
    )
    .files(TREE),
    Case::new(
        "quote_removal",
        r#"echo 'a'"b"\c "d\"e" 'f\g' "h\$i" $'j\tk' a\ b"#,
    ),
    // ── set options ──
    Case::new("errexit_stops_at_a_failure", "set -e; echo a; false; echo b"),
    Case::new(
        "errexit_exceptions",
        "set -e; if false; then :; fi; while false; do :; done; false || echo or; false && echo no; ! true; x=$(false; echo sub); echo $x; echo end",
    ),
    Case::new(
        "errexit_ignored_in_function_called_as_condition",
        "set -e; f() { false; echo still; }; if f; then echo t; fi; f && echo and",
    ),
    Case::new("errexit_applies_to_subshell_status", "set -e; (false); echo no"),
    Case::new("errexit_on_last_part_of_and_list", "set -e; true && false; echo no"),
    Case::new("nounset", "set -u; x=1; echo $x ${y:-dflt}; echo $y; echo no"),
    Case::new(
        "xtrace_goes_to_stderr",
        "{ set -x; echo \"a b\" c; x=1; set +x; } 2>&1",
    ),
    // ── builtins ──
    Case::new(
        "cd_and_pwd",
        "mkdir -p a/b; cd a/b; echo ${PWD##*/}; cd ..; echo ${PWD##*/}; cd - >/dev/null; echo ${PWD##*/}; cd nowhere 2>/dev/null; echo $?; [ \"$(pwd)\" = \"$PWD\" ] && echo pwd-matches",
    ),
    Case::new(
        "export_and_unset",
        "export A=1; B=2; printenv A; printenv B || echo no-B; export B; printenv B; unset A; printenv A || echo unset-A; echo ${A-gone}",
    ),
    Case::new("set_and_shift", "set -- a b c d; shift; echo $@; shift 2; echo $# $1; shift 5; echo $?"),
    Case::new("exit_status_of_the_script", "echo before; exit 4; echo after"),
    Case::new("return_outside_function_fails", "return 2>/dev/null; echo $?"),
    Case::new(
        "true_false_colon",
        "true; echo $?; false; echo $?; :; echo $?; : ignored args; echo $?",
    ),
    Case::new(
        "echo_options",
        "echo -n a; echo -e 'b\\tc'; echo -E 'd\\n'; echo -- -n; echo -x; echo -ne 'e\\n'",
    ),
    Case::new(
        "printf_formats",
        "printf '%s|%5s|%-5s|%d|%05d|%x|%o|%.2f|%c\\n' s r l 42 7 255 8 3.14159 word; printf '%s\\n' a b c; printf '%b\\n' 'x\\ty'; printf -v v '%03d' 5; echo $v",
    ),
    Case::new(
        "test_and_brackets",
        "[ -f a.txt ] && echo file; [ -d d ] && echo dir; [ -e nope ] || echo missing; [ -s a.txt ] && echo nonempty; test abc = abc && echo eq; [ 3 -lt 10 ] && echo lt; [ a != b -a 1 -eq 1 ] && echo and; [ ! -z x ] && echo notz; [ ]; echo $?",
    )
    .files(TREE),
    Case::new(
        "double_bracket_conditions",
        "x=hello.txt; [[ $x == *.txt ]] && echo glob; [[ $x == \"*.txt\" ]] || echo quoted; [[ -n $x && ! -z $x ]] && echo logic; [[ 10 -gt 9 ]] && echo num; [[ abc < abd ]] && echo order; [[ v1.22 =~ ^v([0-9]+)\\.([0-9]+)$ ]] && echo ${BASH_REMATCH[2]}",
    ),
    Case::new(
        "read_variants",
        "read -r a b <<< 'one two three'; echo \"$a|$b\"; read x <<< '  pad  '; echo \"[$x]\"; read -r r <<< 'a\\b'; echo \"$r\"; read n <<< 'a\\b'; echo \"$n\"; IFS=, read p q <<< 'x,y'; echo $q; read last < /dev/null; echo $?",
    ),
    Case::new(
        "read_a_file_line_by_line",
        "while IFS= read -r line; do echo \"<$line>\"; done < b.txt",
    )
    .files(TREE),
    Case::new(
        "source_and_dot",
        "echo 'LIB=1; libf() { echo lib $1 $#; }; return 4; echo no' > lib.sh; . ./lib.sh; echo $? $LIB; libf a b; source ./lib.sh x; echo $?",
    ),
    Case::new(
        "eval_runs_in_this_shell",
        "eval 'x=1; y=$((x+1))'; echo $x $y; cmd='echo evaluated'; eval $cmd; eval \"z='a b'\"; echo \"$z\"",
    ),
    Case::new(
        "command_and_type",
        "command -v echo; command -v cat >/dev/null && echo cat-found; type -t echo; type -t if; f() { :; }; type -t f; command -v nosuch || echo none; type echo",
    ),
    Case::new(
        "command_skips_functions",
        "echo() { builtin echo \"wrapped $*\"; }; echo a; command echo b; f() { :; }; command f 2>/dev/null; echo $?",
    ),
    // ── command lookup ──
    Case::new(
        "function_shadows_builtin_and_program",
        "cat() { echo my-cat; }; cat; unset -f cat; echo real | cat; true() { echo my-true; }; true",
    ),
    Case::new("command_not_found_is_127", "no-such-command-xyz; echo $?"),
    Case::new(
        "script_by_path_runs_in_a_child_shell",
        "A=1; export B=2; f() { :; }; ./show.sh one 'two words'; echo $?; ./plain.sh; echo $?",
    )
    .files(&[
        (
            "show.sh",
            "#!/bin/bash\necho \"args: $# $1 | $2\"\necho \"A=${A-unset} B=${B-unset}\"\ntype -t f || echo no-functions\nexit 5\n",
        ),
        ("plain.sh", "echo plain script\n"),
    ]),
    Case::new(
        "missing_path_and_directory",
        "./nope.sh; echo $?; mkdir dir; ./dir; echo $?",
    ),
    // ── a session across lines (state persists, only exports reach programs) ──
    Case::new(
        "state_persists_across_lines",
        "mkdir -p d\ncd d\nX=1\nexport Y=2\nf() { echo \"f sees $X\"; }\nset -e\nf\nprintenv X || echo X-not-exported\nprintenv Y\nfalse\necho unreachable\n",
    ),
    Case::new(
        "script_file_with_arguments",
        "echo \"$# $1 $2\"; echo ${0##*/}; shift; echo $1",
    )
    .file(&["first", "second arg"]),
    Case::new(
        "script_file_exit_status",
        "set -u\necho start\necho $undefined\necho never\n",
    )
    .file(&[]),
    Case::new("syntax_error_exits_2", "echo a; if then"),
    // ── patterns of real build scripts ──
    Case::new(
        "here_document_written_by_a_function",
        "gen() {\n  cat > out.txt <<EOF\nname=$1\nversion=${2:-0}\nEOF\n}\ngen first\ncat out.txt\n",
    ),
    Case::new(
        "exit_trap_sees_the_status",
        "set -e\ntrap 'echo \"exit with $?\"' EXIT\necho working\nfalse\necho never\n",
    ),
    Case::new(
        "read_loop_keeps_an_unterminated_last_line",
        "printf 'one\\ntwo' > f\nn=0\nwhile IFS= read -r line || [ -n \"$line\" ]; do n=$((n+1)); echo \"$line\"; done < f\necho $n\n",
    ),
    Case::new(
        "version_string_surgery",
        "V=1.22.3-rc1\necho ${V%%.*} ${V#*.} ${V%-*} ${V##*-}\nMINOR=${V#*.}; echo ${MINOR%%.*}\n",
    ),
    Case::new(
        "shell_as_a_command",
        "bash -c 'echo $0 $1; exit 4' zero one; echo $?; echo 'echo piped' | bash",
    ),
    Case::new(
        "exec_redirects_the_rest_of_the_script",
        "exec 3>&1 > out.log\necho captured\nexec 1>&3\ncat out.log\n",
    ),
    // The toolbox's sort keeps a key beside each line (runtimes/base/toolbox/crates/uu_sort):
    // ties, numbers past f64's precision, lines that are no plain number and every order flag.
    Case::new(
        "sort_orders_as_gnu_sort",
        "for o in -n -rn -nu -ns -nrs -r -u -s; do echo \"== $o\"; sort $o mixed.txt; done\n\
         echo '== plain'; sort mixed.txt\n\
         i=0; while [ $i -lt 4000 ]; do\n\
           echo $(( (i * 7919) % 4001 - 2000 )); echo \"k$(( (i * 104729) % 997 ))x\"; i=$((i+1))\n\
         done > gen.txt\n\
         for o in -n -rn -nu -r -u; do sort $o gen.txt | sha256sum; done; sort gen.txt | sha256sum\n",
    )
    .files(&[(
        "mixed.txt",
        "10\n-3\n 7\n0\n-0\n00\n1.5\n1.50\n.5\n-.5\n-0.5\n12345678901234567890\n\
         12345678901234567891\n1e3\nabc\n12abc\n+5\n\n  -2\n9\n10\nAbc\nabcdefgh1\n\
         abcdefgh0\nabcdefg\nabcdefgh\n\tx\n",
    )]),
    // `-c` and `-m` read on a second thread upstream; the toolbox's do without (WASI).
    Case::new(
        "sort_checks_and_merges_as_gnu_sort",
        "for o in -n -nu -r ''; do sort $o -c mixed.txt; echo \"c $o $?\"; done\n\
         sort -n mixed.txt > a.txt; sort -n -c a.txt; echo \"sorted $?\"; sort -nu -c a.txt; echo \"unique $?\"\n\
         sort -C b.txt; echo \"quiet $?\"\n\
         printf '3\\n1\\n' > c.txt; sort -n c.txt > d.txt\n\
         for o in -n -nu -ns; do echo \"== m $o\"; sort -m $o a.txt d.txt a.txt; done\n\
         sort -rn mixed.txt > r.txt; sort -m -rn r.txt d.txt | head -3\n\
         printf 'a\\nc\\n' > x.txt; printf 'b\\nd\\n' | sort -m x.txt - -o x.txt; cat x.txt\n\
         : > empty.txt; sort -c empty.txt; echo \"empty $?\"; sort -m empty.txt c.txt\n",
    )
    .files(&[
        (
            "mixed.txt",
            "10\n-3\n 7\n0\n-0\n1.5\n1.50\n12345678901234567890\n12345678901234567891\nabc\n\n",
        ),
        ("b.txt", "b\na\n"),
    ]),
    Case::new(
        "brace_expansion",
        "echo {a,b}c a{1..3} {3..1} {a..e..2} x{,y} \"{a,b}\"; mkdir -p p/{x,y}; echo p/*",
    ),
];
