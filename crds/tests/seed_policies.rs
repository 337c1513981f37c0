//! The two policies of seed 002 (re-indented from the article), which use FollowFD and
//! UnfollowFD with argFd/argName: they must validate and compile.

use tetra_crds::check_policy_yaml;
use tetra_crds::compile::AttachTarget;

const SYS_READ_FOLLOW_PREFIX: &str = r#"
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "sys-read-follow-prefix"
spec:
  kprobes:
  - call: "fd_install"
    syscall: false
    return: false
    args:
    - index: 0
      type: int
    - index: 1
      type: "file"
    selectors:
    - matchPIDs:
      - operator: NotIn
        followForks: true
        isNamespacePID: true
        values:
        - 1
      matchArgs:
      - index: 1
        operator: "Prefix"
        values:
        - "/etc/"
      matchActions:
      - action: FollowFD
        argFd: 0
        argName: 1
  - call: "sys_close"
    syscall: true
    args:
    - index: 0
      type: "int"
    selectors:
    - matchActions:
      - action: UnfollowFD
        argFd: 0
        argName: 0
  - call: "sys_read"
    syscall: true
    args:
    - index: 0
      type: "fd"
    - index: 1
      type: "char_buf"
      returnCopy: true
    - index: 2
      type: "size_t"
  - call: "sys_write"
    syscall: true
    args:
    - index: 0
      type: "fd"
    - index: 1
      type: "char_buf"
      sizeArgIndex: 3
    - index: 2
      type: "size_t"
"#;

const CONNECT: &str = r#"
apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "connect"
spec:
  kprobes:
  - call: "tcp_connect"
    syscall: false
    args:
    - index: 0
      type: "sock"
  - call: "tcp_close"
    syscall: false
    args:
    - index: 0
      type: "sock"
  - call: "tcp_sendmsg"
    syscall: false
    args:
    - index: 0
      type: "sock"
    - index: 2
      type: int
"#;

#[test]
fn seed_follow_fd_policy_compiles() {
    let p = check_policy_yaml(SYS_READ_FOLLOW_PREFIX).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.name, "sys-read-follow-prefix");
    assert_eq!(p.hooks.len(), 4);
    let fd_install = &p.hooks[0];
    assert_eq!(
        fd_install.attach,
        AttachTarget::Kprobe {
            symbol: "fd_install".into(),
            syscall: false,
            return_probe: false
        }
    );
    let sel = &fd_install.selectors[0];
    assert_eq!(
        (sel.pids[0].op, sel.pids[0].flags, sel.pids[0].pids.clone()),
        (2, 3, vec![1])
    );
    assert_eq!(
        (sel.actions[0].code, sel.actions[0].params.clone()),
        (2, vec![0, 1])
    );
    assert_eq!(
        p.hooks[1].attach,
        AttachTarget::Kprobe {
            symbol: "__x64_sys_close".into(),
            syscall: true,
            return_probe: false
        }
    );
    assert!(p.hooks[2].args[1].return_copy);
    assert_eq!(p.hooks[3].args[1].size_arg_index, 3);
}

#[test]
fn seed_connect_policy_compiles() {
    let p = check_policy_yaml(CONNECT).unwrap_or_else(|e| panic!("{e:?}"));
    let symbols: Vec<_> = p.hooks.iter().map(|h| h.attach.clone()).collect();
    assert_eq!(
        symbols[2],
        AttachTarget::Kprobe {
            symbol: "tcp_sendmsg".into(),
            syscall: false,
            return_probe: false
        }
    );
    assert!(p.hooks.iter().all(|h| h.selectors.is_empty()));
}
