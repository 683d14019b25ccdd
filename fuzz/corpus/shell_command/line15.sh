[[ -f a ]] || { echo no; exit 1; }
systemctl status sshd
