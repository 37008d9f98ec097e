# Placeholder: the fuzzer engineer replaces this fragment.
