# Login shells (bash -cl) read this; it reads .bashrc, as the distributions' skeletons do.
[ -f ~/.bashrc ] && . ~/.bashrc
